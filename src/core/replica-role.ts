// What a replica of an etcd-led group does next, given what it knows of etcd and
// itself: the rules of docs/replication.md as one pure function, so the
// coordinator's shell (coordinator/etcd-control.ts, which the simulation in
// test/sim/replica-group-sim.test.ts runs too) decides by these alone.
//   - a primary acts only while its lease is certainly alive, and only while etcd
//     names it leader at its epoch; otherwise it fences itself;
//   - with a leader named: follow it (a key naming this replica while it does not
//     lead, from an earlier life or a campaign whose answer was lost, is removed);
//   - with none: campaign only as a member of the ISR (or in a shard that never
//     had one), with a live lease and a clock close enough to the last primary's.

export interface LeaderView {
  replicaId: string;
  address: string;
  /** The leader key's create revision. */
  epoch: number;
  /** The lease it sits on: a primary whose key is not on the lease it keeps alive must fence. */
  lease: string;
}

export interface IsrView {
  members: readonly string[];
  /** 0: no ISR key yet, a shard that never had a leader. */
  modRevision: number;
}

export interface ReplicaView {
  selfId: string;
  role: "primary" | "backup" | "candidate";
  epoch: number;
  /** Our session lease id ("" while we have none) and whether it is certainly alive now. */
  lease: string;
  leaseValid: boolean;
  /** undefined: not read from etcd yet. */
  leader: LeaderView | undefined;
  isr: IsrView | undefined;
  /** Our wall clock minus the last primary's, as last measured (undefined: never measured). */
  clockOffsetMs: number | undefined;
  maxClockOffsetMs: number;
  /** The leader we already follow: address and epoch. */
  following: { address: string; epoch: number } | undefined;
}

export type ReplicaDecision =
  | { kind: "stay" }
  | { kind: "fence"; reason: string }
  | { kind: "follow"; address: string; epoch: number }
  | { kind: "remove-stale-leader-key" }
  | { kind: "campaign"; freshShard: boolean }
  | { kind: "wait"; reason: string };

export function decideReplicaRole(v: ReplicaView): ReplicaDecision {
  if (v.role === "primary") {
    if (!v.leaseValid) return { kind: "fence", reason: "no keep-alive answered within the lease: it may have expired in etcd" };
    if (v.leader === undefined) return { kind: "fence", reason: "the leader key is gone from etcd" };
    if (v.leader.epoch !== v.epoch) return { kind: "fence", reason: `${v.leader.replicaId} leads epoch ${v.leader.epoch}` };
    if (v.leader.lease !== v.lease) return { kind: "fence", reason: "the leader key is not on the lease this node keeps alive" };
    return { kind: "stay" };
  }
  const leader = v.leader;
  if (leader !== undefined) {
    // Our own key while we do not lead: an earlier life's, or a campaign whose answer was lost
    // (it won in etcd but never acted). Either way no reply went out under it: remove it, campaign anew.
    if (leader.replicaId === v.selfId) return { kind: "remove-stale-leader-key" };
    if (v.following?.address === leader.address && v.following.epoch === leader.epoch) return { kind: "stay" };
    return { kind: "follow", address: leader.address, epoch: leader.epoch };
  }
  const isr = v.isr;
  if (isr === undefined || v.lease === "" || !v.leaseValid) return { kind: "stay" };
  const freshShard = isr.modRevision === 0;
  if (!freshShard && !isr.members.includes(v.selfId)) {
    return { kind: "wait", reason: `not in the in-sync replicas (${isr.members.join(", ") || "none"}): this node may lack acknowledged tasks, so it waits for a leader` };
  }
  if (v.clockOffsetMs !== undefined && Math.abs(v.clockOffsetMs) > v.maxClockOffsetMs) {
    return { kind: "wait", reason: `this node's clock is ${Math.round(v.clockOffsetMs)} ms off the last primary's (more than --max-clock-offset-ms ${v.maxClockOffsetMs}): leading would fire delays, deadlines and timeouts early or never` };
  }
  return { kind: "campaign", freshShard };
}
