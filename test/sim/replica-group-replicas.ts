// The simulated IsrReplicaSet (src/coordinator/isr-replica-set.ts): a primary's
// backup connections and their replica ids around the real InSyncReplicas, with
// the same calls in the same places; an ISR change goes to etcd through
// SimControl.writeIsr and settles only on what etcd is known to hold (retried
// after isrRetryMs while unknown). Each backup's clock offset goes through the
// real ClockOffsetFilter on the node's monotonic clock.

import { CLOCK_WINDOW_MS } from "../../src/core/clock-offset.ts";
import { ClockOffsetFilter } from "../../src/core/clock-offset.ts";
import { InSyncReplicas } from "../../src/core/in-sync-replicas.ts";
import { CONTROL } from "./replica-group-control.ts";
import { NODE, type Msg, type SimNode } from "./replica-group-node.ts";
import type { Conn } from "./replica-group-world.ts";

/** IsrReplicaSet over simulated connections: the same calls into InSyncReplicas, in the same places. */
export class SimReplicaSet {
  private readonly isr: InSyncReplicas;
  private readonly backups = new Map<Conn<Msg>, { replicaId: string; clock: ClockOffsetFilter }>();
  /** This primary stepped down: answers to its ISR writes no longer matter. */
  private closed = false;
  /** Stats only: members a stall kept in the ISR during resume number `resume` (see ack()). */
  private savedAtStall: { resume: number; ids: Set<string> } | undefined;

  constructor(private readonly node: SimNode, members: string[], deposed: string | undefined, lastIndex: number, now: number) {
    this.isr = new InSyncReplicas({ selfId: node.replicaId, lagTimeoutMs: NODE.lagTimeoutMs }, members, lastIndex, now);
    if (deposed !== undefined && members.includes(deposed)) this.isr.lost(deposed);
  }

  /** A backup was sent a snapshot at `snapshotIndex` (`now`: the primary's monotonic clock). */
  add(conn: Conn<Msg>, replicaId: string, snapshotIndex: number, now: number): void {
    // A replica that redialed before we saw its old socket close: the new connection is the one that counts.
    for (const [old, b] of this.backups) {
      if (b.replicaId !== replicaId || old === conn) continue;
      this.backups.delete(old);
      this.node.cluster.stats.replicaConnsReplaced++;
      this.node.trace(`${replicaId}'s older connection replaced by a newer one`);
      this.node.cluster.world.close(old, 1);
    }
    this.backups.set(conn, { replicaId, clock: new ClockOffsetFilter(CLOCK_WINDOW_MS) });
    this.isr.connected(replicaId, snapshotIndex, now);
  }

  ack(conn: Conn<Msg>, index: number): void {
    const b = this.backups.get(conn);
    if (b === undefined) return;
    this.isr.acked(b.replicaId, index);
    const saved = this.savedAtStall;
    if (saved !== undefined && this.node.replaying && saved.resume === this.node.resumes && saved.ids.has(b.replicaId)) {
      this.savedAtStall = undefined;
      this.node.cluster.stats.primaryStallsForgiven++;
      this.node.trace(`read ${b.replicaId}'s ack from its backlog: the stall kept it in the ISR`);
    }
  }

  /** `offsetMs`: our wall clock when its ACK arrived minus its wall clock when it left. */
  clockOffset(conn: Conn<Msg>, offsetMs: number): void {
    const b = this.backups.get(conn);
    if (b === undefined) return;
    const now = this.node.mono();
    b.clock.sample(offsetMs, now);
    const tooFar = Math.abs(b.clock.estimate(now)!) > CONTROL.maxClockOffsetMs;
    if (!tooFar && Math.abs(offsetMs) > CONTROL.maxClockOffsetMs) this.node.cluster.stats.delayedClockSamplesOutvoted++;
    this.isr.exclude(b.replicaId, tooFar, 0);
  }

  /**
   * IsrReplicaSet.stalled: this primary stood still for `stalledMs` until `now`
   * (monotonic); its connected backups' lag clocks move on by that much.
   */
  stalled(now: number, stalledMs: number): void {
    const stats = this.node.cluster.stats;
    stats.primaryStalls++;
    // Members the stall keeps in while this node still leads (the tick's pump may yet fence it):
    // forgiven (counted in ack()) once one's ack comes out of the backlog this resume replays.
    const saved = this.node.control.mayLead(now) ? this.savedByStall(now, stalledMs) : [];
    this.savedAtStall = saved.length > 0 ? { resume: this.node.resumes, ids: new Set(saved) } : undefined;
    this.isr.stalled(now, stalledMs);
  }

  /**
   * For stats only: ISR members whose lag clock had run past lagTimeoutMs only by
   * counting this stall, and that are still short of their mark (commit() will not
   * restart it): without stalled() this pump would propose dropping them. It reads
   * InSyncReplicas' private state (as commit(), stalled() and lagging() judge it)
   * and changes nothing.
   */
  private savedByStall(now: number, stalledMs: number): string[] {
    type Lag = { connected: boolean; acked: number; target: number; behindSince: number | undefined; excluded: boolean };
    const replicas = (this.isr as unknown as { replicas: Map<string, Lag> }).replicas;
    return this.isr.members.filter((id) => {
      const r = replicas.get(id);
      if (r === undefined || !r.connected || r.excluded || r.acked >= r.target || r.behindSince === undefined) return false;
      return now - r.behindSince > NODE.lagTimeoutMs && now - Math.min(now, r.behindSince + stalledMs) <= NODE.lagTimeoutMs;
    });
  }

  remove(conn: Conn<Msg>, now: number): void {
    const b = this.backups.get(conn);
    if (b === undefined) return;
    this.backups.delete(conn);
    this.isr.disconnected(b.replicaId, now);
  }

  broadcast(msg: Msg): void {
    for (const conn of this.backups.keys()) this.node.cluster.world.send(conn, 1, msg);
  }

  commit(lastIndex: number, now: number): number {
    const committed = this.isr.commit(lastIndex, now);
    const next = this.isr.proposal(now);
    if (next !== undefined) {
      const before = [...this.isr.members];
      this.node.trace(`proposing ISR ${before.join(",")} -> ${next.join(",")}`);
      this.write(next, before);
    }
    return committed;
  }

  /** Settles only on what etcd is known to hold; while unknown the proposal stays open (commits wait for both lists). */
  private write(next: string[], before: string[]): void {
    this.node.control.writeIsr(next, (held) => this.settle(held, before), (why) => {
      if (this.closed) return;
      this.node.trace(`ISR change to ${next.join(",")} of unknown outcome (${why}); trying again in ${CONTROL.isrRetryMs} ms`);
      this.node.cluster.stats.isrRetries++;
      this.node.cluster.world.timer(this.node, CONTROL.isrRetryMs, () => {
        if (!this.closed) this.write(next, before);
      });
    });
  }

  closeAll(): void {
    this.closed = true;
    for (const conn of this.backups.keys()) this.node.cluster.world.close(conn, 1);
    this.backups.clear();
  }

  private settle(members: string[], before: string[]): void {
    if (this.closed) return;
    this.isr.settled(members);
    const stats = this.node.cluster.stats;
    if (before.some((id) => !members.includes(id))) stats.isrShrinks++;
    if (members.some((id) => !before.includes(id))) stats.isrExpansions++;
    this.node.pump();
  }
}
