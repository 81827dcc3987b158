// The role rules of an etcd-led replica group (src/core/replica-role.ts), one case each.

import { expect, test } from "bun:test";
import { decideReplicaRole, type ReplicaView } from "../../src/core/replica-role.ts";

const leaderB = { replicaId: "b", address: "10.0.0.2:7000", epoch: 40, lease: "L-b" };

function view(over: Partial<ReplicaView>): ReplicaView {
  return {
    selfId: "a", role: "candidate", epoch: 0, lease: "L-a", leaseValid: true, leader: undefined,
    isr: { members: ["a", "b"], modRevision: 12 }, clockOffsetMs: 3, maxClockOffsetMs: 500, following: undefined, ...over,
  };
}

test("a primary stays while its lease lives and etcd names it at its epoch", () => {
  const self = { replicaId: "a", address: "x", epoch: 50, lease: "L-a" };
  expect(decideReplicaRole(view({ role: "primary", epoch: 50, leader: self })).kind).toBe("stay");
});

test("a primary fences when its lease may have expired, its key is gone, or another epoch leads", () => {
  const self = { replicaId: "a", address: "x", epoch: 50, lease: "L-a" };
  expect(decideReplicaRole(view({ role: "primary", epoch: 50, leader: self, leaseValid: false })).kind).toBe("fence");
  expect(decideReplicaRole(view({ role: "primary", epoch: 50, leader: undefined })).kind).toBe("fence");
  expect(decideReplicaRole(view({ role: "primary", epoch: 50, leader: leaderB }))).toMatchObject({ kind: "fence", reason: expect.stringContaining("epoch 40") });
  // Its key on a lease it no longer keeps alive (its session was replaced): that key will expire under it.
  expect(decideReplicaRole(view({ role: "primary", epoch: 50, leader: { ...self, lease: "L-old" } }))).toMatchObject({ kind: "fence", reason: expect.stringContaining("lease") });
});

test("a replica follows the leader etcd names, once", () => {
  expect(decideReplicaRole(view({ leader: leaderB }))).toEqual({ kind: "follow", address: leaderB.address, epoch: 40 });
  expect(decideReplicaRole(view({ role: "backup", epoch: 40, leader: leaderB, following: { address: leaderB.address, epoch: 40 } })).kind).toBe("stay");
  // The same address at a new epoch (it lost and won again) is followed anew: its state may differ.
  expect(decideReplicaRole(view({ role: "backup", epoch: 30, leader: leaderB, following: { address: leaderB.address, epoch: 30 } })).kind).toBe("follow");
});

test("a leader key naming this replica while it does not lead goes: an earlier life's, or a won campaign whose answer was lost", () => {
  expect(decideReplicaRole(view({ leader: { ...leaderB, replicaId: "a", lease: "L-old" } })).kind).toBe("remove-stale-leader-key");
  // Found by the simulation (seed 96): "stay" here left the shard with no acting primary for good.
  expect(decideReplicaRole(view({ leader: { ...leaderB, replicaId: "a", lease: "L-a" } })).kind).toBe("remove-stale-leader-key");
});

test("with no leader, only an ISR member with a live lease and a close clock campaigns", () => {
  expect(decideReplicaRole(view({}))).toEqual({ kind: "campaign", freshShard: false });
  expect(decideReplicaRole(view({ isr: { members: [], modRevision: 0 } }))).toEqual({ kind: "campaign", freshShard: true });
  expect(decideReplicaRole(view({ isr: { members: ["b", "c"], modRevision: 12 } }))).toMatchObject({ kind: "wait", reason: expect.stringContaining("not in the in-sync replicas") });
  expect(decideReplicaRole(view({ clockOffsetMs: -7_200_000 }))).toMatchObject({ kind: "wait", reason: expect.stringContaining("clock") });
  expect(decideReplicaRole(view({ leaseValid: false })).kind).toBe("stay");
  expect(decideReplicaRole(view({ lease: "" })).kind).toBe("stay");
  expect(decideReplicaRole(view({ isr: undefined })).kind).toBe("stay");
});
