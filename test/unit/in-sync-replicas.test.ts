// The ISR acknowledgement rule (src/core/in-sync-replicas.ts): commits wait for
// every member, members leave only through etcd, and, over random schedules,
// the ISR etcd holds never names a replica that lacks a committed entry.

import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/core/assert.ts";
import { InSyncReplicas } from "../../src/core/in-sync-replicas.ts";
import { LeaderLease } from "../../src/core/leader-lease.ts";
import { Prng } from "../../src/core/prng.ts";

const LAG_MS = 1000;

function group(members = ["a", "b", "c"], lastIndex = 10, now = 0): InSyncReplicas {
  return new InSyncReplicas({ selfId: "a", lagTimeoutMs: LAG_MS }, members, lastIndex, now);
}

describe("InSyncReplicas", () => {
  test("a leader alone in the ISR commits what it appends", () => {
    const isr = group(["a"]);
    expect(isr.commit(12, 0)).toBe(12);
  });

  test("commits wait for every member, then move to the lowest acknowledgement", () => {
    const isr = group();
    isr.connected("b", 0, 0);
    isr.connected("c", 0, 0);
    expect(isr.commit(20, 1)).toBe(0);
    isr.acked("b", 20);
    expect(isr.commit(20, 2)).toBe(0);
    isr.acked("c", 15);
    expect(isr.commit(20, 3)).toBe(15);
    isr.acked("c", 20);
    expect(isr.commit(20, 4)).toBe(20);
  });

  test("a lost member is proposed for removal after the lag timeout, and counts until etcd confirms", () => {
    const isr = group(["a", "b"]);
    isr.connected("b", 0, 0);
    isr.acked("b", 10);
    isr.commit(10, 0);
    isr.disconnected("b", 100);
    expect(isr.commit(11, 100)).toBe(10);
    expect(isr.proposal(100 + LAG_MS)).toBeUndefined();
    const next = isr.proposal(101 + LAG_MS);
    expect(next).toEqual(["a"]);
    // Proposed but not confirmed: still waited for.
    expect(isr.commit(11, 102 + LAG_MS)).toBe(10);
    isr.settled(["a"]);
    expect(isr.commit(11, 103 + LAG_MS)).toBe(11);
  });

  test("a failed compare-and-swap leaves the ISR as it was", () => {
    const isr = group(["a", "b"]);
    isr.commit(11, 0);
    expect(isr.proposal(LAG_MS + 1)).toEqual(["a"]);
    isr.settled(undefined);
    expect(isr.members).toEqual(["a", "b"]);
    expect(isr.commit(11, LAG_MS + 2)).toBe(0);
  });

  test("a member acknowledging steadily under load is never lagging, though always a little behind", () => {
    const isr = group(["a", "b"]);
    isr.connected("b", 0, 0);
    let last = 10;
    for (let now = 0; now < 10 * LAG_MS; now += 10) {
      isr.acked("b", last); // it holds what was last when we looked before
      last += 5;
      isr.commit(last, now);
      expect(isr.proposal(now)).toBeUndefined();
    }
  });

  test("a caught-up replica is proposed for the ISR and counts from the proposal on", () => {
    const isr = group(["a"]);
    expect(isr.commit(30, 0)).toBe(30);
    isr.connected("b", 0, 1);
    isr.acked("b", 25);
    isr.commit(30, 2);
    expect(isr.proposal(2)).toBeUndefined(); // short of what is committed
    isr.acked("b", 30);
    isr.commit(31, 3);
    expect(isr.proposal(3)).toBeUndefined(); // 31 was committed without it meanwhile
    isr.acked("b", 31);
    isr.commit(31, 4);
    expect(isr.proposal(4)).toEqual(["a", "b"]);
    expect(isr.commit(35, 5)).toBe(31); // from the proposal on, commits wait for it
    isr.acked("b", 35);
    expect(isr.commit(35, 6)).toBe(35);
    isr.settled(["a", "b"]);
    expect(isr.members).toEqual(["a", "b"]);
  });

  test("an excluded replica (clock too far off) leaves and does not come back", () => {
    const isr = group(["a", "b"]);
    isr.connected("b", 0, 0);
    isr.acked("b", 10);
    isr.exclude("b", true, 1);
    isr.commit(10, 1);
    expect(isr.proposal(1)).toEqual(["a"]);
    isr.settled(["a"]);
    isr.acked("b", 12);
    isr.commit(12, 2);
    expect(isr.proposal(2)).toBeUndefined();
  });

  test("the leader's own stall does not count against its members: their acks are unread, not late", () => {
    const isr = group(["a", "b"]);
    isr.connected("b", 0, 0);
    isr.acked("b", 10);
    isr.commit(12, 0); // b is behind from t=0
    // Paused until t=2000; its first pump after that comes before b's queued acks are read.
    isr.stalled(2000, 2000);
    isr.commit(14, 2000);
    expect(isr.proposal(2000)).toBeUndefined();
    isr.acked("b", 14);
    isr.commit(14, 2001);
    expect(isr.proposal(2001 + LAG_MS)).toBeUndefined();
    // A deposed leader stays lost whatever happens to us.
    const fresh = group(["a", "b"]);
    fresh.lost("b");
    fresh.stalled(5, 5);
    fresh.commit(10, 5);
    expect(fresh.proposal(5)).toEqual(["a"]);
  });

  test("a replica that reconnects again and again but never catches up leaves the ISR", () => {
    const isr = group(["a", "b"]);
    isr.commit(20, 0);
    for (let t = 0; t < 5 * LAG_MS; t += 400) {
      isr.connected("b", 20, t); // a snapshot at 20 it never finishes loading
      isr.commit(20, t + 1);
      isr.disconnected("b", t + 300);
    }
    expect(isr.proposal(5 * LAG_MS)).toEqual(["a"]);
  });

  test("a stall shifts the lag clocks of connected replicas by its length, not to now", () => {
    const isr = group(["a", "b"]);
    isr.connected("b", 0, 0);
    isr.acked("b", 10);
    isr.commit(12, 0); // b behind from t=0
    isr.stalled(300, 300); // a short stall: b gets 300 ms back
    expect(isr.proposal(LAG_MS + 200)).toBeUndefined();
    expect(isr.proposal(LAG_MS + 301)).toEqual(["a"]);
  });

  test("a leader must be in the ISR it takes over", () => {
    expect(() => new InSyncReplicas({ selfId: "z", lagTimeoutMs: 1 }, ["a"], 0, 0)).toThrow(/invariant/);
  });

  test("random schedules: etcd's ISR never names a replica without every committed entry", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rng = new Prng(seed);
      const ids = ["a", "b", "c", "d"];
      const isr = new InSyncReplicas({ selfId: "a", lagTimeoutMs: 50 }, ["a", "b", "c"], 0, 0);
      /** What each replica really holds (the highest index it ever acknowledged: its state never goes back). */
      const holds = new Map<string, number>(ids.map((id) => [id, 0]));
      const sent = new Map<string, number>(ids.map((id) => [id, 0]));
      const up = new Set<string>();
      let etcdIsr = ["a", "b", "c"];
      let inFlight: string[] | undefined;
      let last = 0;
      for (let now = 1; now < 2000; now++) {
        const roll = rng.int(10);
        const id = ids[1 + rng.int(3)]!;
        if (roll < 3) last += 1 + rng.int(3);
        else if (roll === 3 && !up.has(id)) {
          up.add(id);
          isr.connected(id, last, now);
          sent.set(id, last); // a snapshot at the last index
        } else if (roll === 4 && up.has(id)) {
          up.delete(id);
          isr.disconnected(id, now);
        } else if (roll < 8 && up.has(id)) {
          const index = sent.get(id)! + rng.int(last - sent.get(id)! + 1);
          sent.set(id, index);
          holds.set(id, Math.max(holds.get(id)!, index));
          isr.acked(id, index);
        } else if (roll === 8 && inFlight !== undefined) {
          const ok = rng.int(4) > 0;
          if (ok) etcdIsr = inFlight;
          isr.settled(ok ? inFlight : undefined);
          inFlight = undefined;
        }
        const committed = isr.commit(last, now);
        inFlight ??= isr.proposal(now);
        for (const m of etcdIsr) {
          if (m !== "a" && holds.get(m)! < committed) throw new Error(`seed=${seed} t=${now}: ISR member ${m} holds ${holds.get(m)} < committed ${committed}`);
        }
        for (const m of inFlight ?? []) {
          if (m !== "a" && holds.get(m)! < committed) throw new Error(`seed=${seed} t=${now}: proposed member ${m} holds ${holds.get(m)} < committed ${committed}`);
        }
      }
    }
  });
});

describe("LeaderLease", () => {
  test("valid from the send of the answered keep-alive, less the margin", () => {
    const lease = new LeaderLease(50);
    expect(lease.isValid(0)).toBe(false);
    lease.renewed(100, 1000);
    expect(lease.isValid(1049)).toBe(true);
    expect(lease.isValid(1050)).toBe(false);
    expect(lease.remainingMs(1000)).toBe(50);
  });

  test("a late answer to an older keep-alive never shortens it; a lost lease ends it", () => {
    const lease = new LeaderLease(0);
    lease.renewed(500, 1000);
    lease.renewed(200, 1000);
    expect(lease.isValid(1400)).toBe(true);
    lease.renewed(600, 0);
    expect(lease.isValid(601)).toBe(false);
  });
});

describe("assertions", () => {
  test("a leader not in the ISR it took over is a broken invariant", () => {
    expect(() => group(["b", "c"])).toThrow(AssertionError);
    expect(() => group(["b", "c"])).toThrow("invariant broken: a leader is in the ISR it took over (leader a, ISR b,c)");
  });

  test("a log shorter than what is committed is a broken invariant, not a commit index moved back", () => {
    const isr = group(["a"]);
    expect(isr.commit(12, 0)).toBe(12);
    expect(() => isr.commit(11, 1)).toThrow("invariant broken: the log never shrinks below the committed index (last index 11, committed 12)");
    expect(isr.committedIndex).toBe(12);
  });

  test("a negative lease margin is a broken invariant: the lease would outlive etcd's", () => {
    expect(() => new LeaderLease(-1)).toThrow(AssertionError);
    expect(() => new LeaderLease(Number.NaN)).toThrow(AssertionError);
  });
});
