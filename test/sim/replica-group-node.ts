// One simulated coordinator of an etcd-led replica group. Its role is the real
// EtcdControl and, as primary, its replicas the real IsrReplicaSet, both over
// the simulated world (replica-group-ports.ts); around them, the parts of
// coordinator.ts that decide what is acknowledged, kept small: a log that is a
// list of entries, pump() (check the lease, ship, commit, release replies),
// noticeStall() on every tick and pump, and as backup: load a snapshot, append
// and acknowledge what it holds.

import { EtcdControl } from "../../src/coordinator/etcd-control.ts";
import { IsrReplicaSet, type BackupConn } from "../../src/coordinator/isr-replica-set.ts";
import { HeldQueue, replicate } from "../../src/core/replication-step.ts";
import { StallDetector } from "../../src/core/stall-detector.ts";
import { SimLink } from "./replica-group-link.ts";
import { CONTROL, drainMicrotasks, simClock, simEtcdPort, simLogger, simTimers } from "./replica-group-ports.ts";
import type { Conn, ConnEnd, Host, World } from "./replica-group-world.ts";

export const NODE = { tickMs: 50, lagTimeoutMs: 1_000 };

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
    /** With power losses on: a primary lost power while it synced a batch it had sent (its disk lost the batch). */
    powerLossesInSync: 0,
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
    /** A watch that hung silently found out by the read-back (before it, a backup could follow a gone leader for good). */
    hungWatchesCaught: 0,
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
  /** The power fails while this primary fsyncs a batch it has already sent (its restart is the cluster's to schedule). */
  powerLossInSync(node: SimNode): boolean;
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
  /** The epoch of the last log write its disk had synced before the batch being shipped (what a power loss leaves). */
  private walEpochSynced = 0;
  control!: EtcdControl<Msg, Msg>;
  private replicas: IsrReplicaSet<SimBackup, Msg> | undefined;
  /** The ISR as the primary's IsrReplicaSet last settled it (for the shrink and expansion counts). */
  private isrSettled: readonly string[] = [];
  /** Stats only: ISR members a stall kept in during resume number `resume` (see fromBackup). */
  private savedAtStall: { resume: number; ids: Set<string> } | undefined;
  /** Each accepted connection, as IsrReplicaSet sees it. */
  private readonly backupOf = new Map<Conn<Msg>, SimBackup>();
  private shipped = 0;
  private held = new HeldQueue<Held>();
  private accepted = new Set<Conn<Msg>>();
  private ackedUpTo = 0;
  /** This process's monotonic clock origin (its rate, monoRate, is the host's). */
  private monoBase = 0;
  /** The coordinator's own stall rule (src/core/stall-detector.ts), on this process's monotonic clock. */
  private stalls = new StallDetector(NODE.tickMs, 0);
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
    this.stalls = new StallDetector(NODE.tickMs, this.mono());
    this.control = new EtcdControl<Msg, Msg>(
      { shard: CONTROL.shard, nodeId: this.name, advertise: this.name, maxClockOffsetMs: CONTROL.maxClockOffsetMs },
      { prefix: CONTROL.prefix, leaseTtlMs: CONTROL.leaseTtlMs, replicaId: this.replicaId },
      { etcd: simEtcdPort(this), clock: simClock(this), timers: simTimers(this), dialLeader: (address, events) => new SimLink(address, events, this) },
      simLogger(this),
      {
        promote: (epoch) => this.promote(epoch),
        follow: () => this.follow(),
        stepDown: (reason) => this.stepDown(reason),
        onReplication: (msg) => this.onReplication(msg),
        onReplicationReadEnd: () => this.ackPrimary(),
      },
    );
    this.control.recovered(this.walEpoch);
    this.replicas = undefined;
    this.backupOf.clear();
    this.held = new HeldQueue<Held>();
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
    this.control.stop(); // its sockets close with the process; etcd hears nothing more
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
    for (const fn of backlog) {
      fn();
      drainMicrotasks(); // as the event loop does between callbacks
    }
    this.replaying = false;
  }

  /**
   * coordinator.noticeStall: a gap between ticks or reads means the process stood still
   * (here: paused), and what its backups sent meanwhile is unread in its backlog, not
   * late: a primary's replicas' lag clocks move on by the gap.
   */
  private noticeStall(monotonic: number): void {
    const gapMs = this.stalls.active(monotonic);
    if (gapMs > 0 && this.control.role === "primary") {
      this.trace(`stood still for ${Math.round(gapMs)} ms; replicas' lag clocks move on by that`);
      if (this.replicas !== undefined) this.countStall(this.replicas, monotonic, gapMs);
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
    this.control.tick(this.wall());
  }

  /** What the real EtcdControl and IsrReplicaSet log: the trace, and the paths of the fixes counted. */
  logged(event: string, fields: Record<string, unknown>): void {
    const stats = this.cluster.stats;
    const reason = String(fields.reason ?? "");
    switch (event) {
      case "fenced: stopped acting as primary":
        stats.fences++;
        if (reason.includes("not on the lease")) stats.leaderKeysOffLeaseFenced++;
        break;
      case "joining etcd":
        if (fields.txnInFlight === true) stats.joinsDuringTxn++;
        break;
      case "etcd unavailable; retrying":
        if (fields.revokedLease !== undefined) stats.halfJoinsRevoked++;
        break;
      case "removing a leader key naming this replica, which does not lead":
        if (fields.onCurrentLease === true) stats.unheardCampaignWins++;
        break;
      case "won the leader key on a session no longer kept alive; not leading on it":
        stats.campaignWinsOnLostLease++;
        break;
      case "dropped an etcd read: a newer one started":
      case "dropped an etcd read's failure: a newer read started":
        stats.staleReloadsDropped++;
        break;
      case "following the leader without its state and no request out: asked for it":
        stats.unsyncedStaysResynced++;
        break;
      case "a replaced link to a leader closed; the current link's request stands":
        stats.replacedLinkDownsIgnored++;
        break;
      case "etcd watch missed a change; re-reading":
        stats.hungWatchesCaught++;
        break;
      case "ignored an in-sync replica list older than the one known":
        stats.olderIsrReadsIgnored++;
        break;
      case "in-sync replica change of unknown outcome; trying again":
        // Unanswered txns only; a failed read-back after a refused one is retried the same way.
        if (String(fields.error).startsWith("in-sync replica change unanswered")) stats.isrWritesUnanswered++;
        stats.isrRetries++;
        break;
      case "not leading":
        // A restarted replica outside the ISR waits (it may lack acknowledged tasks): once per incarnation.
        if (this.restarted && reason.startsWith("not in the in-sync") && this.staleWaitCounted !== this.inc) {
          stats.staleRestartWaits++;
          this.staleWaitCounted = this.inc;
        }
        break;
    }
    const said = Object.entries(fields).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`).join(" ");
    this.trace(`${event}${said === "" ? "" : ` (${said})`}`);
  }

  // ------------------------------------------------------------ primary

  promote(epoch: number): void {
    const stats = this.cluster.stats;
    stats.promotions++;
    if (this.control.deposedReplicaId !== undefined) stats.failovers++;
    this.trace(`promoted at epoch ${epoch} with ${this.log.length} entries, ISR ${this.control.isrMembers.join(",")}`);
    this.replicas = new IsrReplicaSet<SimBackup, Msg>(
      this.replicaId, this.control.isrMembers, this.control.deposedReplicaId, this.log.length, this.mono(), NODE.lagTimeoutMs, CONTROL.maxClockOffsetMs,
      this.control, { clock: simClock(this), timers: simTimers(this), broadcast: (backups, msg) => this.broadcast(backups, msg) }, simLogger(this),
      () => this.isrSettledNow(),
    );
    this.isrSettled = [...this.replicas.members];
    this.savedAtStall = undefined;
    this.shipped = this.log.length;
    this.walEpochSynced = this.walEpoch;
    this.append(-1);
    this.announce();
    this.pump();
  }

  stepDown(reason: string): void {
    this.held.refuseAll((h) => this.cluster.replyToClient(this, h.client, h.submission, false, undefined));
    this.replicas?.closeAll(reason);
    this.announce();
  }

  /** coordinator.pump: fence if the lease may have expired; else ship the log and release what is committed. */
  pump(): void {
    const monotonic = this.mono();
    if (this.control.role === "primary" && !this.control.mayLead(monotonic)) this.control.fence();
    this.noticeStall(monotonic);
    if (this.control.role !== "primary") return;
    this.cluster.acted(this);
    // The coordinator's own order of effects (src/core/replication-step.ts).
    const replicas = this.replicas!;
    let unsynced: { firstIndex: number; entries: Entry[] } | undefined;
    replicate<{ firstIndex: number; entries: Entry[] }>({
      take: () => {
        if (this.shipped === this.log.length) return undefined;
        const batch = { firstIndex: this.shipped + 1, entries: this.log.slice(this.shipped) };
        this.shipped = this.log.length;
        return (unsynced = batch);
      },
      write: () => true, // a durable node's log survives a process crash from its append on (the page cache)
      // The power may fail while the disk syncs what the backups were already sent: the batch is
      // gone from this node's disk, though a backup may hold it (never acknowledged: no commit yet).
      sync: () => {
        if (unsynced !== undefined && this.cluster.powerLossInSync(this)) {
          this.losePower(unsynced.firstIndex);
          return false;
        }
        this.walEpochSynced = this.walEpoch;
        return true;
      },
      send: (batch) => replicas.broadcast({ kind: "append", epoch: this.control.epoch, ...batch, clockMs: this.wall() }),
      commit: (now) => {
        const committed = replicas.commit(this.log.length, now);
        this.cluster.committed(this, committed);
        return committed;
      },
      release: (committed) => this.held.release(committed, (h) => {
        this.cluster.acknowledged(this, h);
        this.cluster.replyToClient(this, h.client, h.submission, true, undefined);
      }),
    }, monotonic);
  }

  /** The process dies and its disk keeps entries up to `firstUnsynced - 1` only. */
  private losePower(firstUnsynced: number): void {
    this.trace(`power lost while syncing entries ${firstUnsynced}-${this.log.length}, already sent: its disk keeps ${firstUnsynced - 1}`);
    this.crash();
    this.log = this.log.slice(0, firstUnsynced - 1); // a new array: the checkers' cache follows the log by identity
    this.walEpoch = this.walEpochSynced;
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
    this.held.hold({ index, client, submission, serial: this.log[index - 1]!.serial });
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
        const backup = this.backupOf.get(c);
        this.backupOf.delete(c);
        if (backup !== undefined) this.replicas?.remove(backup, this.mono(), "connection closed");
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
      this.replicas!.add(this.backup(conn, msg.replicaId), this.log.length, this.mono());
      this.cluster.stats.snapshots++;
    } else if (msg.kind === "ack" && msg.epoch === this.control.epoch) {
      const backup = this.backupOf.get(conn);
      if (backup !== undefined) this.ackFrom(backup, msg.index, msg.clockMs);
    }
    this.pump(); // coordinator.onReadEnd: every read ends in a pump
  }

  private backup(conn: Conn<Msg>, replicaId: string): SimBackup {
    let backup = this.backupOf.get(conn);
    if (backup === undefined) this.backupOf.set(conn, (backup = new SimBackup(conn, this)));
    backup.state.replicaId = replicaId;
    return backup;
  }

  private ackFrom(backup: SimBackup, index: number, clockMs: number): void {
    this.replicas?.ack(backup, index);
    const saved = this.savedAtStall;
    const replicaId = backup.state.replicaId;
    if (saved !== undefined && this.replaying && saved.resume === this.resumes && saved.ids.has(replicaId)) {
      this.savedAtStall = undefined;
      this.cluster.stats.primaryStallsForgiven++;
      this.trace(`read ${replicaId}'s ack from its backlog: the stall kept it in the ISR`);
    }
    const offsetMs = this.wall() - clockMs;
    this.replicas?.clockOffset(backup, offsetMs);
  }

  private broadcast(backups: Iterable<{ conn: SimBackup }>, msg: Msg): void {
    for (const b of backups) this.cluster.world.send(b.conn.conn, 1, msg);
  }

  /** IsrReplicaSet's onChange: an ISR change settled in etcd; held replies may go now. */
  private isrSettledNow(): void {
    const members = this.replicas?.members ?? [];
    const before = this.isrSettled;
    if (before.some((id) => !members.includes(id))) this.cluster.stats.isrShrinks++;
    if (members.some((id) => !before.includes(id))) this.cluster.stats.isrExpansions++;
    this.isrSettled = [...members];
    this.pump();
  }

  /**
   * For stats only, before IsrReplicaSet.stalled: ISR members whose lag clock had run
   * past lagTimeoutMs only by counting this stall, and that are still short of their
   * mark: without stalled() this pump would propose dropping them. Forgiven (counted in
   * ackFrom) once one's ack comes out of the backlog this resume replays. It reads the
   * private state of the real InSyncReplicas (as commit(), stalled() and lagging()
   * judge it) and changes nothing.
   */
  private countStall(replicas: IsrReplicaSet<SimBackup, Msg>, now: number, stalledMs: number): void {
    this.cluster.stats.primaryStalls++;
    if (!this.control.mayLead(now)) return void (this.savedAtStall = undefined); // the tick's pump fences it
    type Lag = { connected: boolean; acked: number; target: number; behindSince: number | undefined; excluded: boolean };
    const lags = (replicas as unknown as { isr: { replicas: Map<string, Lag> } }).isr.replicas;
    const saved = replicas.members.filter((id) => {
      const r = lags.get(id);
      if (r === undefined || !r.connected || r.excluded || r.acked >= r.target || r.behindSince === undefined) return false;
      return now - r.behindSince > NODE.lagTimeoutMs && now - Math.min(now, r.behindSince + stalledMs) <= NODE.lagTimeoutMs;
    });
    this.savedAtStall = saved.length > 0 ? { resume: this.resumes, ids: new Set(saved) } : undefined;
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
    const offsetMs = this.wall() - msg.clockMs;
    this.control.clockOffset(offsetMs);
    const estimate = this.control.clockOffsetMs!;
    if (Math.abs(offsetMs) > CONTROL.maxClockOffsetMs && Math.abs(estimate) <= CONTROL.maxClockOffsetMs) this.cluster.stats.delayedClockSamplesOutvoted++;
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

/** An accepted connection as the real IsrReplicaSet sees it (a Connection in the process). */
class SimBackup implements BackupConn {
  /** The connection's own id: unique in its world, the same in every rerun of a seed. */
  readonly id: number;
  readonly state: { replicaId: string; nodeId: string };

  constructor(readonly conn: Conn<Msg>, private readonly node: SimNode) {
    this.id = conn.id;
    this.state = { replicaId: "", nodeId: conn.ends[0].host.name };
  }

  close(reason: string): void {
    if (reason.startsWith("replaced by a newer connection")) {
      this.node.cluster.stats.replicaConnsReplaced++;
      this.node.trace(`${this.state.replicaId}'s older connection replaced by a newer one`);
    }
    this.node.cluster.world.close(this.conn, 1);
  }
}
