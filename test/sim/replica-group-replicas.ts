// The simulated IsrReplicaSet (src/coordinator/isr-replica-set.ts): a primary's
// backup connections and their replica ids around the real InSyncReplicas, with
// the same calls in the same places; an ISR change goes to etcd through
// SimControl.writeIsr and settles when etcd answers.

import { InSyncReplicas } from "../../src/core/in-sync-replicas.ts";
import { CONTROL } from "./replica-group-control.ts";
import { NODE, type Msg, type SimNode } from "./replica-group-node.ts";
import type { Conn } from "./replica-group-world.ts";

/** IsrReplicaSet over simulated connections: the same calls into InSyncReplicas, in the same places. */
export class SimReplicaSet {
  private readonly isr: InSyncReplicas;
  private readonly backups = new Map<Conn<Msg>, { replicaId: string }>();

  constructor(private readonly node: SimNode, members: string[], deposed: string | undefined, lastIndex: number, now: number) {
    this.isr = new InSyncReplicas({ selfId: node.replicaId, lagTimeoutMs: NODE.lagTimeoutMs }, members, lastIndex, now);
    if (deposed !== undefined && members.includes(deposed)) this.isr.lost(deposed);
  }

  add(conn: Conn<Msg>, replicaId: string, now: number): void {
    this.backups.set(conn, { replicaId });
    this.isr.connected(replicaId, now);
  }

  ack(conn: Conn<Msg>, index: number): void {
    const b = this.backups.get(conn);
    if (b !== undefined) this.isr.acked(b.replicaId, index);
  }

  clockOffset(conn: Conn<Msg>, offsetMs: number): void {
    const b = this.backups.get(conn);
    if (b !== undefined) this.isr.exclude(b.replicaId, Math.abs(offsetMs) > CONTROL.maxClockOffsetMs, 0);
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
      this.node.control.writeIsr(next, (ok) => this.settle(ok ? next : undefined, before));
    }
    return committed;
  }

  closeAll(): void {
    for (const conn of this.backups.keys()) this.node.cluster.world.close(conn, 1);
    this.backups.clear();
  }

  private settle(members: string[] | undefined, before: string[]): void {
    this.isr.settled(members);
    if (members !== undefined) {
      const stats = this.node.cluster.stats;
      if (before.some((id) => !members.includes(id))) stats.isrShrinks++;
      if (members.some((id) => !before.includes(id))) stats.isrExpansions++;
    }
    this.node.pump();
  }
}
