// The simulated IsrReplicaSet (src/coordinator/isr-replica-set.ts): a primary's
// backup connections and their replica ids around the real InSyncReplicas, with
// the same calls in the same places; an ISR change goes to etcd through
// SimControl.writeIsr and settles only on what etcd is known to hold (retried
// after isrRetryMs while unknown). Each backup's clock offset goes through the
// real ClockOffsetFilter on the node's monotonic clock.

import { CLOCK_WINDOW_MS } from "../../src/coordinator/etcd-control.ts";
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

  constructor(private readonly node: SimNode, members: string[], deposed: string | undefined, lastIndex: number, now: number) {
    this.isr = new InSyncReplicas({ selfId: node.replicaId, lagTimeoutMs: NODE.lagTimeoutMs }, members, lastIndex, now);
    if (deposed !== undefined && members.includes(deposed)) this.isr.lost(deposed);
  }

  add(conn: Conn<Msg>, replicaId: string, now: number): void {
    this.backups.set(conn, { replicaId, clock: new ClockOffsetFilter(CLOCK_WINDOW_MS) });
    this.isr.connected(replicaId, now);
  }

  ack(conn: Conn<Msg>, index: number): void {
    const b = this.backups.get(conn);
    if (b !== undefined) this.isr.acked(b.replicaId, index);
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
