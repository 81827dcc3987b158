// The primary's replicas in an etcd-led group: connections and their replica
// ids around the pure ISR rule (core/in-sync-replicas.ts). Commits wait for
// every ISR member; a member that lags or leaves is removed from the ISR in
// etcd (compare-and-swap) before anything is acknowledged without it, and a
// backup that has caught up is added back. Its clock, timers and sockets come
// in from outside (control-ports.ts), so the simulation runs this same class.

import type { Logger } from "../cli/log.ts";
import { CLOCK_WINDOW_MS, ClockOffsetFilter } from "../core/clock-offset.ts";
import { InSyncReplicas } from "../core/in-sync-replicas.ts";
import type { Clock, Timers } from "./control-ports.ts";

export interface IsrStore {
  /**
   * Write the ISR to etcd if this node still leads and nobody changed it. Resolves
   * with the ISR etcd holds afterwards; rejects when that is unknown.
   */
  writeIsr(members: string[]): Promise<string[]>;
}

/** A backup's connection: the replica id and node id it said in its HELLO and REPL_SYNC. */
export interface BackupConn {
  readonly id: number;
  readonly state: { replicaId?: unknown; nodeId?: unknown };
  close(reason: string): void;
}

/** `Msg`: what is broadcast to the backups (a frame encoder in the process). */
export interface IsrPorts<C, Msg> {
  clock: Clock;
  timers: Timers;
  broadcast(backups: Iterable<{ conn: C }>, msg: Msg): void;
}

/** After an ISR write of unknown outcome, the same proposal is written again this much later. */
export const ISR_RETRY_MS = 100;

/** In the process, IsrReplicaSet<Connection, FrameEncoder> is a Replicas (role-control.ts). */
export class IsrReplicaSet<C extends BackupConn, Msg> {
  private readonly isr: InSyncReplicas;
  private readonly backups = new Map<number, { conn: C; replicaId: string; clock: ClockOffsetFilter; clockTooFar: boolean }>();
  /** This primary stepped down: answers to its ISR writes no longer matter. */
  private closed = false;

  /**
   * A leader that just won with the ISR `members` read from etcd. `deposed`, the
   * leader it replaced, leaves the ISR at once: it must load this leader's state
   * before it holds anything of this epoch.
   */
  constructor(
    selfId: string,
    members: string[],
    deposed: string | undefined,
    lastIndex: number,
    now: number,
    lagTimeoutMs: number,
    private readonly maxClockOffsetMs: number,
    private readonly store: IsrStore,
    private readonly ports: IsrPorts<C, Msg>,
    private readonly log: Logger,
    /** Called when an ISR change settled: held replies may be released now. */
    private readonly onChange: () => void,
  ) {
    this.isr = new InSyncReplicas({ selfId, lagTimeoutMs }, members, lastIndex, now);
    if (deposed !== undefined && members.includes(deposed)) this.isr.lost(deposed);
  }

  get inSyncCount(): number {
    return this.isr.members.length - 1;
  }

  get committedIndex(): number {
    return this.isr.committedIndex;
  }

  get members(): readonly string[] {
    return this.isr.members;
  }

  alone(): boolean {
    return this.isr.members.length === 1 && !this.isr.changePending;
  }

  add(conn: C, snapshotIndex: number, now: number): void {
    const replicaId = String(conn.state.replicaId ?? "");
    // A replica that redialed before we saw its old socket close: the new connection is the one that counts.
    for (const [id, b] of this.backups) {
      if (b.replicaId !== replicaId || b.conn === conn) continue;
      this.backups.delete(id);
      b.conn.close("replaced by a newer connection of the same replica");
    }
    this.backups.set(conn.id, { conn, replicaId, clock: new ClockOffsetFilter(CLOCK_WINDOW_MS), clockTooFar: false });
    this.isr.connected(replicaId, snapshotIndex, now);
  }

  ack(conn: C, index: number): void {
    const b = this.backups.get(conn.id);
    if (b !== undefined) this.isr.acked(b.replicaId, index);
  }

  /**
   * A replica whose clock is too far from ours would fire delays and deadlines early or
   * never if it led: keep it out. `offsetMs`: our clock when its ACK arrived minus its
   * clock when it left (the least-delayed recent sample counts, see ClockOffsetFilter).
   */
  clockOffset(conn: C, offsetMs: number): void {
    const b = this.backups.get(conn.id);
    if (b === undefined) return;
    const now = this.ports.clock.now();
    b.clock.sample(offsetMs, now);
    const estimate = b.clock.estimate(now)!;
    const tooFar = Math.abs(estimate) > this.maxClockOffsetMs;
    if (tooFar !== b.clockTooFar) {
      b.clockTooFar = tooFar;
      const fields = { backup: conn.state.nodeId, replicaId: b.replicaId, offsetMs: -Math.round(estimate), maxClockOffsetMs: this.maxClockOffsetMs };
      if (tooFar) this.log.warn("backup clock too far off; keeping it out of the in-sync replicas", fields);
      else this.log.info("backup clock back within bounds", fields);
    }
    this.isr.exclude(b.replicaId, tooFar, 0);
  }

  stalled(now: number, stalledMs: number): void {
    this.isr.stalled(now, stalledMs);
  }

  remove(conn: C, now: number, reason: string): void {
    const b = this.backups.get(conn.id);
    if (b === undefined) return;
    this.backups.delete(conn.id);
    this.isr.disconnected(b.replicaId, now);
    this.log.warn("backup lost", { backup: conn.state.nodeId, replicaId: b.replicaId, reason });
  }

  broadcast(msg: Msg): void {
    this.ports.broadcast(this.backups.values(), msg);
  }

  commit(lastIndex: number, now: number): number {
    const committed = this.isr.commit(lastIndex, now);
    const next = this.isr.proposal(now);
    if (next !== undefined) {
      this.log.info("proposing in-sync replicas", { from: this.isr.members, to: next });
      this.write(next);
    }
    return committed;
  }

  /**
   * Settles only on what etcd is known to hold. While the outcome is unknown the
   * proposal stays open, so commits keep waiting for the members of both lists.
   */
  private write(next: string[]): void {
    this.store.writeIsr(next).then(
      (held) => this.settle(held),
      (err: Error) => {
        if (this.closed) return;
        this.log.warn("in-sync replica change of unknown outcome; trying again", { to: next, error: err.message, retryInMs: ISR_RETRY_MS });
        this.ports.timers.after(ISR_RETRY_MS, () => {
          if (!this.closed) this.write(next);
        });
      },
    );
  }

  closeAll(reason: string): void {
    this.closed = true;
    for (const b of this.backups.values()) b.conn.close(reason);
    this.backups.clear();
  }

  private settle(members: string[]): void {
    if (this.closed) return;
    this.isr.settled(members);
    this.onChange();
  }
}
