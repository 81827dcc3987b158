// The static --peer role rules (src/core/static-role.ts), one at a time.

import { describe, expect, test } from "bun:test";
import { decideStaticRole, type PeerView, type StaticRoleView } from "../../src/core/static-role.ts";

function peer(label: string, over: Partial<PeerView> = {}): PeerView {
  return { label, up: true, primary: false, shard: 0, epoch: 1, index: 10, heard: true, retired: false, ...over };
}

function view(over: Partial<StaticRoleView> = {}): StaticRoleView {
  return {
    address: "127.0.0.1:5001", shard: 0, role: "backup", epoch: 1, highestEpochSeen: 1, recoveredIndex: 10,
    holdsLatest: true, syncedSinceStart: true, rejoining: false, following: undefined, peers: [], failoverTimeoutMs: 400, ...over,
  };
}

describe("with a primary among the peers", () => {
  test("a backup follows the live primary with the highest epoch, ties to the lower address", () => {
    const peers = [peer("127.0.0.1:5003", { primary: true, epoch: 2 }), peer("127.0.0.1:5002", { primary: true, epoch: 2 }), peer("127.0.0.1:5000", { primary: true, epoch: 1 })];
    expect(decideStaticRole(view({ peers }))).toEqual({ kind: "follow", to: "127.0.0.1:5002" });
  });

  test("already following it at its epoch: stay", () => {
    const peers = [peer("127.0.0.1:5000", { primary: true, epoch: 2 })];
    expect(decideStaticRole(view({ epoch: 2, following: "127.0.0.1:5000", peers }))).toEqual({ kind: "stay" });
  });

  test("a primary of another shard, a down one, and one that handed over to us (older epoch) are not followed", () => {
    const peers = [
      peer("127.0.0.1:5000", { primary: true, shard: 1, epoch: 9 }),
      peer("127.0.0.1:5002", { primary: true, up: false, epoch: 9 }),
      peer("127.0.0.1:5003", { primary: true, retired: true, epoch: 2 }),
    ];
    expect(decideStaticRole(view({ epoch: 3, highestEpochSeen: 3, peers })).kind).toBe("may-lead");
  });

  test("a primary steps down to a newer epoch, and to the lower address at the same epoch", () => {
    expect(decideStaticRole(view({ role: "primary", epoch: 2, peers: [peer("127.0.0.1:5009", { primary: true, epoch: 3 })] }))).toEqual({ kind: "step-down", to: "127.0.0.1:5009" });
    expect(decideStaticRole(view({ role: "primary", epoch: 2, peers: [peer("127.0.0.1:5000", { primary: true, epoch: 2 })] }))).toEqual({ kind: "step-down", to: "127.0.0.1:5000" });
    expect(decideStaticRole(view({ role: "primary", epoch: 2, peers: [peer("127.0.0.1:5009", { primary: true, epoch: 2 })] }))).toEqual({ kind: "stay" });
  });
});

describe("with no primary", () => {
  test("waits a failover timeout per live peer that should lead first (more state, or as much and a lower address)", () => {
    const peers = [
      peer("127.0.0.1:5000", { epoch: 1, index: 10 }), // as much, lower address: leads first
      peer("127.0.0.1:5002", { epoch: 1, index: 11 }), // more: leads first
      peer("127.0.0.1:5003", { epoch: 1, index: 9 }), // less
      peer("127.0.0.1:5004", { epoch: 2, up: false }), // more, but down
    ];
    expect(decideStaticRole(view({ peers, highestEpochSeen: 2 }))).toEqual({ kind: "may-lead", afterMs: 1_200, epoch: 3 });
  });

  test("a node that set its data aside waits for a primary's snapshot, whatever its peers hold", () => {
    const d = decideStaticRole(view({ rejoining: true, syncedSinceStart: false, recoveredIndex: 0, peers: [peer("127.0.0.1:5000", { index: 0 })] }));
    expect(d.kind).toBe("wait");
  });

  test("after a restart, it waits for every peer to answer, and for any that holds more", () => {
    const restarted = { syncedSinceStart: false };
    expect(decideStaticRole(view({ ...restarted, peers: [peer("127.0.0.1:5000", { heard: false, up: false })] }))).toMatchObject({ kind: "wait", peer: "127.0.0.1:5000" });
    expect(decideStaticRole(view({ ...restarted, peers: [peer("127.0.0.1:5000", { up: false, epoch: 1, index: 11 })] }))).toMatchObject({ kind: "wait", peer: "127.0.0.1:5000" });
    expect(decideStaticRole(view({ ...restarted, peers: [peer("127.0.0.1:5000", { up: false, epoch: 1, index: 10 })] })).kind).toBe("may-lead");
  });

  test("a node without the state of the latest epoch it saw never leads", () => {
    expect(decideStaticRole(view({ holdsLatest: false, highestEpochSeen: 4 }))).toMatchObject({ kind: "wait" });
    // A cluster that never had a primary: anyone may start it.
    expect(decideStaticRole(view({ holdsLatest: false, epoch: 0, highestEpochSeen: 0, recoveredIndex: 0 })).kind).toBe("may-lead");
  });
});
