// One shard's replica set for the replication simulation. Every node runs the
// REAL Scheduler, EventLog, applyEntry, snapshot codec and FrameDecoder; around
// them, a small model of what the coordinator shell does (coordinator.ts,
// replica-set.ts) and of the network between nodes. The model is the spec:
//  - the primary appends each input to its log, applies it, and ships each
//    batch to every backup over an ordered, delayed, arbitrarily split stream;
//  - a backup applies a batch only in order and in its epoch, then acks;
//  - commit = lowest index every in-sync backup acked (in sync: acked its
//    snapshot's index); with none in sync the primary waits backupTimeoutMs
//    after losing the last one, then goes on alone (commit = its last index),
//    but not while a backup catches up (KNOWN_BUGS.aloneWhileBackupSyncs); a
//    backup that stops acking for backupTimeoutMs is dropped and syncs again;
//  - replies wait for the commit of their entry;
//  - it pumps when an ack arrives, and logs a DISPATCH or a TICK only when the
//    scheduler says it would change something (as the coordinator does);
//  - a primary crash loses what it had not sent (a random prefix of what is on
//    the wire still arrives); the most up-to-date in-sync backup promotes with
//    epoch + 1 and a PROMOTE entry; everyone else re-syncs from a snapshot.

import { applyEntry, Ev, type ApplyResult } from "../../src/coordinator/event-log.ts";
import { Prng } from "../../src/core/prng.ts";
import type { SubmitOutcome } from "../../src/core/scheduler.ts";
import type { SchedulerState } from "../../src/core/scheduler-state.ts";
import type { Task, Watcher } from "../../src/core/task.ts";
import { KNOWN_BUGS } from "./replication-known-bugs.ts";
import type { SimNode } from "./replication-node.ts";
import { appendFrame, snapshotFrame, splitChunks } from "./replication-wire.ts";

export interface ShardTiming {
  /** One way, primary to backup; a stream stays in order whatever the delays. */
  replicationDelayMsMax: number;
  ackDelayMsMax: number;
  /** replica-set.ts: grace before going on alone, and how long a silent backup is kept. */
  backupTimeoutMs: number;
  /** How long the primary takes to see that a killed backup's connection is gone. */
  deadBackupNoticedMsMax: number;
  /** From a primary crash to the promotion of a backup (failover-timeout). */
  failoverMsMin: number;
  failoverMsMax: number;
  /** From a backup (re)connecting to its snapshot request reaching the primary. */
  resyncMsMax: number;
}

/** Replies to clients, held until the entry they report on is committed. */
export interface HeldReply {
  index: number;
  kind: "submitted" | "done";
  conn: number;
  requestId: number;
  taskId: number;
  ok: boolean;
  output: Uint8Array;
}

/** The primary's effects, as the shell hands them out: the simulation plays workers and clients. */
export interface EffectSink {
  assigned(workerId: number, task: Task): void;
  /** A task ended on the primary by the entry at `index`. */
  finished(task: Task, index: number): void;
  workerLost(workerId: number): void;
  released(reply: HeldReply): void;
  promoted(node: SimNode): void;
}

interface Link {
  readonly node: SimNode;
  /** The node's connection this link writes to (SimNode.connection when it was made). */
  readonly connection: number;
  /** Bytes on their way to the backup, in order. */
  readonly wire: Array<{ at: number; bytes: Uint8Array }>;
  readonly acks: Array<{ at: number; epoch: number; index: number }>;
  wireAt: number;
  ackAt: number;
  ackedIndex: number;
  /** Index of its snapshot: it counts for commits once it acked that far. */
  syncedFrom: number;
  inSync: boolean;
  progressAt: number;
  /** The backup died: the primary sees its connection close at this time. */
  closesAt: number | undefined;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

export class Shard {
  primary: SimNode | undefined;
  now = 0;
  committed = 0;
  highestEpoch = 0;
  /** A primary crashed: this backup promotes at this time. */
  failover: { at: number; node: SimNode } | undefined;
  readonly primaryOfEpoch = new Map<number, string>();
  /** The primary's exported state at each batch end, to compare backups at the same index. */
  readonly primaryStates = new Map<number, SchedulerState>();
  readonly stats = { promotions: 0, snapshots: 0, batches: 0, aloneCommits: 0, backupsDropped: 0, entriesLostInCrash: 0, pumps: 0 };
  /** Role changes and the replica set's decisions, one line each (SIM_TRACE=1). */
  trace: ((line: string) => void) | undefined;
  private readonly links = new Map<SimNode, Link>();
  private lostAt: number | undefined;
  private held: HeldReply[] = [];

  constructor(
    readonly nodes: SimNode[],
    private readonly prng: Prng,
    private readonly timing: ShardTiming,
    private readonly sink: EffectSink,
    private readonly fail: (message: string) => never,
  ) {}

  // ------------------------------------------------------------ primary: inputs

  /** Appends one input to the log and applies that entry: the only way the primary changes. */
  record(type: number, subject: number, body: Uint8Array = EMPTY): ApplyResult {
    const p = this.primary!;
    const log = p.log!;
    const start = log.append(type, this.now, subject, body);
    const result = applyEntry(p.scheduler, p.reader.reset(log.bytes, start, log.length));
    p.appliedIndex = p.log!.lastIndex;
    return result;
  }

  submit(conn: number, requestId: number, body: Uint8Array): SubmitOutcome {
    const outcome = this.record(Ev.SUBMIT, conn, body) as SubmitOutcome;
    if (!outcome.ok) this.fail(`submission refused: ${outcome.code} ${outcome.message}`);
    this.hold({ index: this.primary!.log!.lastIndex, kind: "submitted", conn, requestId, taskId: outcome.taskId, ok: true, output: EMPTY });
    this.effects();
    return outcome;
  }

  /** Any other input: record it, then hand out its effects. */
  input(type: number, subject: number, body: Uint8Array = EMPTY): void {
    this.record(type, subject, body);
    this.effects();
  }

  /** Dispatches, ships the log, releases what is committed (coordinator.pump). */
  pump(): void {
    const p = this.primary;
    if (p === undefined) return;
    this.stats.pumps++;
    if (p.scheduler.dispatchWouldChange(this.now)) this.input(Ev.DISPATCH, 0);
    this.shipLog(p);
    this.release(this.commit(p));
  }

  /** A tick that would change nothing is not logged (coordinator.onTick). */
  tick(): void {
    if (this.primary?.scheduler.tickWouldChange(this.now)) this.input(Ev.TICK, 0);
  }

  private effects(): void {
    const p = this.primary!;
    const ready = p.scheduler.takeReady();
    const index = p.log!.lastIndex;
    for (const [workerId, tasks] of ready.assignments) for (const task of tasks) this.sink.assigned(workerId, task);
    for (const task of ready.finished) this.sink.finished(task, index);
    for (const notice of ready.notices) this.holdDone(notice.task, notice.watcher, index);
    for (const workerId of ready.lostWorkers) this.sink.workerLost(workerId);
  }

  private holdDone(task: Task, watcher: Watcher, index: number): void {
    const ok = task.state === "completed";
    const output = ok ? (task.output ?? EMPTY) : utf8.encode(task.errors.at(-1)?.message ?? task.state);
    this.hold({ index, kind: "done", conn: watcher.conn, requestId: watcher.requestId, taskId: task.id, ok, output });
  }

  private hold(reply: HeldReply): void {
    this.held.push(reply);
  }

  private release(committed: number): void {
    let n = 0;
    while (n < this.held.length && this.held[n]!.index <= committed) n++;
    for (const reply of this.held.splice(0, n)) this.sink.released(reply);
  }

  // ------------------------------------------------------------ primary: replication

  private shipLog(p: SimNode): void {
    const log = p.log!;
    if (log.pendingEntries === 0) return;
    const batch = log.take();
    this.stats.batches++;
    if (this.links.size === 0) return;
    const frame = appendFrame(p.epoch, batch.firstIndex, batch.count, batch.bytes);
    for (const link of this.links.values()) this.send(link, frame);
    this.primaryStates.set(log.lastIndex, p.scheduler.exportState());
  }

  private send(link: Link, frame: Uint8Array): void {
    const at = Math.max(link.wireAt, this.now + this.prng.int(this.timing.replicationDelayMsMax + 1));
    for (const bytes of splitChunks(this.prng, frame)) link.wire.push({ at, bytes });
    link.wireAt = at;
  }

  /** replica-set.ts commit(): the lowest ack of the in-sync backups, or everything when alone. */
  private commit(p: SimNode): number {
    const lastIndex = p.log!.lastIndex;
    let lowest = Infinity;
    for (const link of [...this.links.values()]) {
      if (link.ackedIndex >= lastIndex) link.progressAt = this.now; // owes nothing: its lag clock stands still
      else if (this.now - link.progressAt > this.timing.backupTimeoutMs) {
        this.stats.backupsDropped++;
        this.removeLink(link);
        continue;
      }
      if (link.inSync && link.ackedIndex < lowest) lowest = link.ackedIndex;
    }
    if (lowest !== Infinity) this.committed = Math.max(this.committed, lowest);
    else if (this.alone()) {
      if (this.committed < lastIndex) {
        this.stats.aloneCommits++;
        this.trace?.(`alone: ${p.name} commits ${this.committed + 1}..${lastIndex} (links: ${this.describeLinks()})`);
      }
      this.committed = lastIndex;
    }
    return this.committed;
  }

  private describeLinks(): string {
    return [...this.links.values()].map((l) => `${l.node.name}${l.inSync ? "" : "(syncing)"}@${l.ackedIndex}`).join(" ") || "none";
  }

  alone(): boolean {
    // A linked backup not in sync is catching up: going on alone now would commit past what it will have.
    if (!KNOWN_BUGS.aloneWhileBackupSyncs && this.links.size > 0) return false;
    return this.inSyncCount() === 0 && (this.lostAt === undefined || this.now - this.lostAt >= this.timing.backupTimeoutMs);
  }

  inSyncCount(): number {
    let n = 0;
    for (const link of this.links.values()) if (link.inSync) n++;
    return n;
  }

  /** Backups the primary counts for commits now (and could promote if it crashed). */
  inSyncBackups(): SimNode[] {
    return [...this.links.values()].filter((l) => l.inSync && l.closesAt === undefined && this.connected(l)).map((l) => l.node);
  }

  /** The primary has a connection to this backup (it ships batches to it). */
  isLinked(node: SimNode): boolean {
    const link = this.links.get(node);
    return link !== undefined && this.connected(link);
  }

  private ack(link: Link, epoch: number, index: number): void {
    if (epoch !== this.primary!.epoch || index <= link.ackedIndex) return;
    link.ackedIndex = index;
    link.progressAt = this.now;
    if (!link.inSync && index >= link.syncedFrom) {
      this.trace?.(`in sync: ${link.node.name} acked ${index} (snapshot ${link.syncedFrom}); committed ${this.committed}, last ${this.primary!.log!.lastIndex}`);
      link.inSync = true;
      this.lostAt = undefined;
    }
  }

  /** The primary closes (or sees closed) a backup's connection. A live one reconnects and asks again. */
  private removeLink(link: Link): void {
    this.trace?.(`link closed: ${link.node.name} (in sync ${link.inSync}, acked ${link.ackedIndex})`);
    this.links.delete(link.node);
    if (link.inSync && this.inSyncCount() === 0) this.lostAt = this.now;
    if (this.connected(link)) link.node.syncAt = this.now + this.prng.int(this.timing.resyncMsMax + 1);
  }

  /** REPL_SYNC: everything so far goes to the existing backups, then a snapshot at the last index. */
  private sendSnapshot(node: SimNode): void {
    const old = this.links.get(node);
    if (old !== undefined) this.removeLink(old);
    this.pump();
    const p = this.primary!;
    const index = p.log!.lastIndex;
    const state = p.scheduler.exportState();
    this.primaryStates.set(index, state);
    const link: Link = {
      node, connection: node.connect(), wire: [], acks: [], wireAt: 0, ackAt: 0, ackedIndex: 0, syncedFrom: index, inSync: false, progressAt: this.now, closesAt: undefined,
    };
    this.links.set(node, link);
    this.stats.snapshots++;
    this.trace?.(`snapshot: ${p.name} -> ${node.name} at index ${index}`);
    this.send(link, snapshotFrame(p.epoch, index, state));
  }

  // ------------------------------------------------------------ time and faults

  /** Time passes on the network: bytes and acks arrive, dead connections close, failover, resyncs. */
  network(): void {
    let acked = false;
    for (const link of [...this.links.values()]) {
      let n = 0;
      while (n < link.wire.length && link.wire[n]!.at <= this.now) n++;
      const paused = this.now < link.node.pausedUntil;
      const arrived = paused ? [] : link.wire.splice(0, n);
      if (arrived.length > 0 && this.connected(link)) {
        link.node.receive(arrived);
        this.sendAck(link);
      }
      while (link.acks.length > 0 && link.acks[0]!.at <= this.now) {
        const a = link.acks.shift()!;
        this.ack(link, a.epoch, a.index);
        acked = true;
      }
      if (link.closesAt !== undefined && this.now >= link.closesAt) this.removeLink(link);
    }
    // The primary pumps at the end of every read, an ack's too (coordinator.onReadEnd).
    if (acked) this.pump();
    if (this.failover !== undefined && this.now >= this.failover.at) {
      const node = this.failover.node;
      this.failover = undefined;
      this.promote(node);
    }
    if (this.primary === undefined) return;
    for (const node of this.nodes) {
      if (node.role === "backup" && node.syncAt !== undefined && this.now >= Math.max(node.syncAt, node.pausedUntil)) this.sendSnapshot(node);
    }
  }

  private connected(link: Link): boolean {
    return link.node.role === "backup" && link.node.connection === link.connection;
  }

  /** At the end of a read, the backup acks what it applied (coordinator.ackPrimary). */
  private sendAck(link: Link): void {
    const index = link.node.takeAck();
    if (index === undefined) return;
    link.ackAt = Math.max(link.ackAt, this.now + this.prng.int(this.timing.ackDelayMsMax + 1));
    link.acks.push({ at: link.ackAt, epoch: link.node.epoch, index });
  }

  /** A node becomes primary of the next epoch (peers.ts becomePrimary, coordinator.promote). */
  promote(node: SimNode): void {
    const epoch = this.highestEpoch + 1;
    const previous = this.primaryOfEpoch.get(epoch);
    if (previous !== undefined) this.fail(`epoch ${epoch} already had primary ${previous}; ${node.name} promotes to it too`);
    if (this.primary !== undefined) this.fail(`${node.name} promotes while ${this.primary.name} is primary`);
    this.highestEpoch = epoch;
    this.primaryOfEpoch.set(epoch, node.name);
    this.stats.promotions++;
    this.trace?.(`promote: ${node.name} epoch ${epoch} at index ${node.appliedIndex}`);
    node.becomePrimary(epoch);
    this.primary = node;
    // A new ReplicaSet: no backup yet, none ever lost.
    this.links.clear();
    this.lostAt = undefined;
    this.committed = 0;
    this.held = [];
    this.primaryStates.clear();
    this.input(Ev.PROMOTE, epoch);
    this.sink.promoted(node);
    for (const other of this.nodes) {
      if (other === node || other.role !== "backup") continue;
      other.synced = false;
      other.syncAt = this.now + this.prng.int(this.timing.resyncMsMax + 1);
    }
  }

  /** kill -9 of the primary. Its replies die with it; each wire delivers a random prefix. */
  crashPrimary(): { from: SimNode; to: SimNode; lostEntries: number; expected: SchedulerState | undefined } {
    const old = this.primary!;
    for (const link of this.links.values()) {
      if (!this.connected(link)) continue;
      link.node.receive(link.wire.splice(0, this.prng.int(link.wire.length + 1)));
    }
    const candidates = this.inSyncBackups();
    if (candidates.length === 0) this.fail(`primary ${old.name} crashed with no in-sync backup (the simulation should not do that)`);
    let best = candidates[0]!;
    for (const c of candidates) if (c.appliedIndex > best.appliedIndex) best = c;
    const lostEntries = old.log!.lastIndex - best.appliedIndex;
    this.trace?.(`crash: primary ${old.name} at ${old.log!.lastIndex}, committed ${this.committed}; candidates ${candidates.map((c) => `${c.name}@${c.appliedIndex}`).join(" ")}; ${best.name} will promote`);
    this.stats.entriesLostInCrash += lostEntries;
    const expected = this.primaryStates.get(best.appliedIndex);
    old.down(this.now);
    this.primary = undefined;
    this.links.clear();
    this.held = [];
    this.primaryStates.clear();
    // A stopped process cannot take over before it runs again.
    const at = this.now + this.timing.failoverMsMin + this.prng.int(this.timing.failoverMsMax - this.timing.failoverMsMin + 1);
    this.failover = { at: Math.max(at, best.pausedUntil), node: best };
    return { from: old, to: best, lostEntries, expected };
  }

  /** kill -9 of a backup: the primary notices when the connection resets. */
  killBackup(node: SimNode): void {
    this.trace?.(`kill: backup ${node.name} at ${node.appliedIndex}`);
    node.down(this.now);
    const link = this.links.get(node);
    if (link !== undefined) link.closesAt = this.now + this.prng.int(this.timing.deadBackupNoticedMsMax + 1);
  }

  /** A dead node starts again as a new, empty process and asks the primary for a snapshot. */
  restart(node: SimNode): void {
    this.trace?.(`restart: ${node.name}`);
    node.restart(this.now + this.prng.int(this.timing.resyncMsMax + 1));
  }

  /** A backup stops (GC pause, SIGSTOP): it reads and acks nothing until then. */
  pause(node: SimNode, until: number): void {
    this.trace?.(`pause: backup ${node.name} until ${until}`);
    node.pausedUntil = Math.max(node.pausedUntil, until);
  }

  /** Indexes below every backup's position no longer need the primary's state kept. */
  prunePrimaryStates(): void {
    let needed = Infinity;
    for (const link of this.links.values()) {
      if (!this.connected(link)) continue;
      needed = Math.min(needed, link.node.synced ? link.node.appliedIndex : link.syncedFrom);
    }
    for (const index of this.primaryStates.keys()) {
      if (index >= needed) break;
      this.primaryStates.delete(index);
    }
  }
}
