// One simulated coordinator of an etcd-led replica group: the parts of
// coordinator.ts and isr-replica-set.ts that decide what is acknowledged. Its
// log is a list of entries; as primary it feeds the real InSyncReplicas exactly
// as IsrReplicaSet does (on the monotonic clock) and checks the real LeaderLease
// before it acts (pump); every tick and pump notices a stall (a pause) as
// coordinator.noticeStall does; as backup it loads a snapshot, appends and
// acknowledges what it holds.

import type { ReplicaDecision } from "../../src/core/replica-role.ts";
import { SimControl } from "./replica-group-control.ts";
import { SimReplicaSet } from "./replica-group-replicas.ts";
import type { Conn, ConnEnd, Host, World } from "./replica-group-world.ts";

export const NODE = {
  tickMs: 50, lagTimeoutMs: 1_000,
  /** coordinator.ts STALL_MS: a gap between ticks or pumps longer than this plus tickMs means the process stood still. */
  stallMs: 200,
};

export interface Entry {
  /** Unique per append: the same submission retried is another entry. */
  serial: number;
  /** The client submission it carries; -1 for a promotion entry. */
  submission: number;
  epoch: number;
}

/** Between nodes; `clockMs` is the sender's wall clock, as REPL_APPEND and REPL_ACK carry it. */
export type Msg =
  | { kind: "welcome" | "role"; primary: boolean; epoch: number }
  | { kind: "sync"; epoch: number; replicaId: string }
  | { kind: "snapshot"; epoch: number; index: number; log: Entry[] }
  | { kind: "append"; epoch: number; firstIndex: number; entries: Entry[]; clockMs: number }
  | { kind: "ack"; epoch: number; index: number; clockMs: number }
  | { kind: "not-primary" };

export interface Held {
  index: number;
  client: number;
  submission: number;
  serial: number;
}

/** What happened, counted over a run: the coverage the test asserts. */
export function newStats() {
  return {
    promotions: 0, failovers: 0, fences: 0, isrShrinks: 0, isrExpansions: 0, staleRestartWaits: 0, snapshots: 0,
    partitions: 0, pauses: 0, pausesOverTtl: 0, crashes: 0, restarts: 0, hiccups: 0, acks: 0, isrLost: 0,
    // Where the fixed bugs were (replica-group-sim.test.ts REGRESSIONS): each time the fix's path is taken.
    /** A join started while a campaign or key removal was in flight (it used to be dropped). */
    joinsDuringTxn: 0,
    /** Our own key on our current lease removed: a campaign won in etcd whose answer was lost. */
    unheardCampaignWins: 0,
    /** An ISR txn whose answer was lost (it used to count as refused). */
    isrWritesUnanswered: 0,
    /** An ISR write of unknown outcome (writeIsr rejected), written again after isrRetryMs. */
    isrRetries: 0,
    /**
     * An ISR txn that reached etcd after its caller had heard "unanswered" (applied, or
     * refused as a retry got there first): a read-back made before it could not tell
     * (writeIsr used to settle on one).
     */
    isrWritesLate: 0,
    /**
     * A reload whose read was older than a change etcd made before its answer came: the
     * old watch, left open, could deliver that change first and the older read then
     * overwrote it (a backup lost its leader that way). The old watch now stops first.
     */
    readsRacedByOldWatch: 0,
    /** A reload's answer (or failure) dropped because a later reload had started. */
    staleReloadsDropped: 0,
    /** A backup following the right leader without its state or a sync outstanding asked for a snapshot ("stay"). */
    unsyncedStaysResynced: 0,
    /** A join that failed after its grant: the lease revoked (it used to be kept and led on). */
    halfJoinsRevoked: 0,
    /** A clock sample over --max-clock-offset-ms outvoted by a prompter one (it used to count alone). */
    delayedClockSamplesOutvoted: 0,
    /** A primary found it had stood still (a gap over tickMs + STALL_MS): its replicas' lag clocks moved on by it. */
    primaryStalls: 0,
    /**
     * Such a stall that kept an ISR member in: its lag clock had run out only by counting
     * the stall, its acks still unread in the backlog (that pump used to propose dropping it).
     */
    primaryStallsForgiven: 0,
    /**
     * A replaced link's close heard while the current link's sync is outstanding: ignored
     * (it used to clear syncRequested, so the next "stay" asked again: a second snapshot).
     */
    replacedLinkDownsIgnored: 0,
    /** A backup's newer connection replaced its older one at the primary (the older one's acks used to be all it heard). */
    replicaConnsReplaced: 0,
    /** A campaign won on a lease this node no longer keeps alive: it does not lead on it (it used to). */
    campaignWinsOnLostLease: 0,
    /** A primary whose leader key is not on the lease it keeps alive fenced (decideReplicaRole). */
    leaderKeysOffLeaseFenced: 0,
    /** An ISR read or answer older than the ISR already known, ignored (it used to overwrite it). */
    olderIsrReadsIgnored: 0,
  };
}
export type Stats = ReturnType<typeof newStats>;

/** What a node needs of the simulation around it. */
export interface Cluster {
  readonly world: World;
  readonly stats: Stats;
  node(name: string): SimNode;
  nextSerial(): number;
  newReplicaId(node: SimNode): string;
  replyToClient(from: SimNode, client: number, submission: number, ok: boolean, hint: string | undefined): void;
  /** Checker hooks (replica-group-checks.ts). */
  acted(node: SimNode): void;
  committed(node: SimNode, index: number): void;
  acknowledged(node: SimNode, held: Held): void;
}

export class SimNode implements Host {
  inc = 0;
  up = false;
  paused = false;
  private backlog: Array<() => void> = [];
  replicaId = "";
  log: Entry[] = [];
  /** The epoch of the last log write, what a durable node recovers. */
  private walEpoch = 0;
  control!: SimControl;
  private replicas: SimReplicaSet | undefined;
  private shipped = 0;
  private held: Held[] = [];
  private accepted = new Set<Conn<Msg>>();
  private ackedUpTo = 0;
  /** This process's monotonic clock origin (its rate, monoRate, is the host's). */
  private monoBase = 0;
  /** coordinator.ts lastActiveAt: monotonic time of the last tick or pump (see noticeStall). */
  private lastActiveAt = 0;
  restarted = false;
  /** For stats: resumes so far, and whether what arrived during the last pause is being run now. */
  resumes = 0;
  replaying = false;
  private staleWaitCounted = 0;

  constructor(readonly name: string, readonly cluster: Cluster, readonly durable: boolean, private readonly monoRate: number) {}

  mono(): number {
    return this.cluster.world.now * this.monoRate + this.monoBase;
  }

  /** Wall clocks agree (the simulation does not step them): only message delays make offsets seem to differ. */
  wall(): number {
    return this.cluster.world.now;
  }

  trace(line: string): void {
    this.cluster.world.trace(`${this.name}(${this.replicaId}) ${line}`);
  }

  deliver(inc: number, fn: () => void): void {
    if (inc !== this.inc || !this.up) return;
    if (this.paused) this.backlog.push(fn);
    else fn();
  }

  // ------------------------------------------------------------ process life

  start(): void {
    this.inc++;
    this.up = true;
    this.paused = false;
    this.backlog = [];
    if (!this.durable || this.replicaId === "") {
      this.replicaId = this.cluster.newReplicaId(this);
      this.log = [];
      this.walEpoch = 0;
    }
    this.monoBase = this.cluster.world.prng.int(1_000_000) - this.cluster.world.now * this.monoRate;
    this.lastActiveAt = this.mono();
    this.control = new SimControl(this);
    this.control.recovered(this.walEpoch);
    this.replicas = undefined;
    this.held = [];
    this.accepted = new Set();
    this.ackedUpTo = 0;
    this.trace(`started${this.durable ? ` with ${this.log.length} entries` : ""}`);
    const tick = () => this.cluster.world.timer(this, NODE.tickMs, () => (this.onTick(), tick()));
    tick();
    this.control.start();
  }

  /** The process dies: the kernel closes its sockets; memory is lost (the log too, unless durable). */
  crash(): void {
    this.trace(`crashed as ${this.control.role}`);
    this.control.link?.close();
    for (const conn of this.accepted) this.cluster.world.close(conn, 1);
    this.up = false;
    this.inc++;
  }

  pause(): void {
    this.paused = true;
  }

  /** Runs what arrived meanwhile, in order: to the process, its clocks just jumped. */
  resume(): void {
    this.paused = false;
    const backlog = this.backlog;
    this.backlog = [];
    this.resumes++;
    this.replaying = true;
    for (const fn of backlog) fn();
    this.replaying = false;
  }

  /**
   * coordinator.noticeStall: ticks and reads keep a process busy at least every tickMs; a
   * longer gap means it stood still (here: paused), and what its backups sent meanwhile
   * is unread in its backlog, not late: a primary's replicas' lag clocks move on by the gap.
   */
  private noticeStall(monotonic: number): void {
    const gapMs = monotonic - this.lastActiveAt;
    this.lastActiveAt = monotonic;
    if (gapMs > NODE.stallMs + NODE.tickMs && this.control.role === "primary") {
      this.trace(`stood still for ${Math.round(gapMs)} ms; replicas' lag clocks move on by that`);
      this.replicas?.stalled(monotonic, gapMs);
    }
  }

  private onTick(): void {
    this.noticeStall(this.mono());
    if (this.control.role === "primary") {
      const lastIndex = this.log.length;
      this.pump();
      if (this.log.length === lastIndex) this.replicas?.broadcast({ kind: "append", epoch: this.control.epoch, firstIndex: lastIndex + 1, entries: [], clockMs: this.wall() });
    }
    this.control.tick();
  }

  decided(decision: ReplicaDecision, noLeader: boolean): void {
    if (decision.kind !== "wait" || !noLeader || !this.restarted || !decision.reason.startsWith("not in the in-sync")) return;
    if (this.staleWaitCounted !== this.inc) this.cluster.stats.staleRestartWaits++;
    this.staleWaitCounted = this.inc;
  }

  // ------------------------------------------------------------ primary

  promote(epoch: number): void {
    const stats = this.cluster.stats;
    stats.promotions++;
    if (this.control.deposedReplicaId !== undefined) stats.failovers++;
    this.trace(`promoted at epoch ${epoch} with ${this.log.length} entries, ISR ${this.control.isrMembers.join(",")}`);
    this.replicas = new SimReplicaSet(this, this.control.isrMembers, this.control.deposedReplicaId, this.log.length, this.mono());
    this.shipped = this.log.length;
    this.append(-1);
    this.announce();
    this.pump();
  }

  stepDown(_reason: string): void {
    for (const h of this.held) this.cluster.replyToClient(this, h.client, h.submission, false, undefined);
    this.held = [];
    this.replicas?.closeAll();
    this.announce();
  }

  /** coordinator.pump: fence if the lease may have expired; else ship the log and release what is committed. */
  pump(): void {
    const monotonic = this.mono();
    if (this.control.role === "primary" && !this.control.mayLead(monotonic)) this.control.fence();
    this.noticeStall(monotonic);
    if (this.control.role !== "primary") return;
    this.cluster.acted(this);
    if (this.shipped < this.log.length) {
      const entries = this.log.slice(this.shipped);
      this.replicas!.broadcast({ kind: "append", epoch: this.control.epoch, firstIndex: this.shipped + 1, entries, clockMs: this.wall() });
      this.shipped = this.log.length;
    }
    const committed = this.replicas!.commit(this.log.length, monotonic);
    this.cluster.committed(this, committed);
    let released = 0;
    while (released < this.held.length && this.held[released]!.index <= committed) {
      const h = this.held[released++]!;
      this.cluster.acknowledged(this, h);
      this.cluster.replyToClient(this, h.client, h.submission, true, undefined);
    }
    if (released > 0) this.held = this.held.slice(released);
  }

  private append(submission: number): number {
    this.log.push({ serial: this.cluster.nextSerial(), submission, epoch: this.control.epoch });
    this.walEpoch = this.control.epoch;
    return this.log.length;
  }

  submit(client: number, submission: number): void {
    if (this.control.role !== "primary") {
      this.cluster.replyToClient(this, client, submission, false, this.control.primaryLabel);
      return this.pump(); // coordinator.onReadEnd: every read ends in a pump
    }
    const index = this.append(submission);
    this.held.push({ index, client, submission, serial: this.log[index - 1]!.serial });
    this.pump();
  }

  private announce(): void {
    const msg: Msg = { kind: "role", primary: this.control.role === "primary", epoch: this.control.epoch };
    for (const conn of this.accepted) this.cluster.world.send(conn, 1, msg);
  }

  /** A backup dialled in: its end of the connection; the WELCOME goes once this process runs. */
  accept(conn: Conn<Msg>): ConnEnd<Msg> {
    const inc = this.inc;
    const world = this.cluster.world;
    world.at(world.now, () => this.deliver(inc, () => {
      this.accepted.add(conn);
      world.send(conn, 1, { kind: "welcome", primary: this.control.role === "primary", epoch: this.control.epoch });
      this.pump(); // the HELLO's read ends in a pump
    }));
    return {
      host: this, inc, closed: false,
      message: (c, msg) => this.fromBackup(c, msg),
      closedByPeer: (c) => {
        this.accepted.delete(c);
        this.replicas?.remove(c, this.mono());
      },
    };
  }

  private fromBackup(conn: Conn<Msg>, msg: Msg): void {
    if (msg.kind === "sync") {
      if (this.control.role !== "primary") {
        this.cluster.world.send(conn, 1, { kind: "not-primary" });
        return this.pump(); // coordinator.onReadEnd
      }
      this.pump(); // what is appended so far goes to the existing backups first
      this.cluster.world.send(conn, 1, { kind: "snapshot", epoch: this.control.epoch, index: this.log.length, log: this.log.slice() });
      this.replicas!.add(conn, msg.replicaId, this.log.length, this.mono());
      this.cluster.stats.snapshots++;
    } else if (msg.kind === "ack" && msg.epoch === this.control.epoch) {
      this.replicas?.ack(conn, msg.index);
      this.replicas?.clockOffset(conn, this.wall() - msg.clockMs);
    }
    this.pump(); // coordinator.onReadEnd: every read ends in a pump
  }

  // ------------------------------------------------------------ backup

  follow(): void {
    this.ackedUpTo = 0;
  }

  onReplication(msg: Msg): void {
    if (msg.kind === "snapshot") {
      this.log = msg.log;
      this.walEpoch = msg.epoch;
      this.ackedUpTo = 0;
      this.control.synced(msg.epoch);
      return;
    }
    if (msg.kind !== "append" || msg.epoch !== this.control.epoch) return;
    this.control.clockOffset(this.wall() - msg.clockMs);
    if (!this.control.isSynced) return;
    if (msg.firstIndex !== this.log.length + 1) return this.control.resync();
    if (msg.entries.length > 0) {
      for (const e of msg.entries) this.log.push(e);
      this.walEpoch = msg.epoch;
    }
  }

  ackPrimary(): void {
    if (this.log.length === this.ackedUpTo || !this.control.isSynced) return;
    this.ackedUpTo = this.log.length;
    this.control.sendToPrimary({ kind: "ack", epoch: this.control.epoch, index: this.log.length, clockMs: this.wall() });
  }
}
