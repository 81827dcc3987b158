// The primary's order of effects (src/core/replication-step.ts): write, send,
// sync, commit, release; a failed write stops the step before anyone hears of
// it, a failed sync before anything commits.

import { expect, test } from "bun:test";
import { AssertionError } from "../../src/core/assert.ts";
import { HeldQueue, replicate, type ReplicationStep } from "../../src/core/replication-step.ts";

function recorder(batch: string | undefined, { written = true, synced = true } = {}, committed = 7): { step: ReplicationStep<string>; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    step: {
      take: () => (calls.push("take"), batch),
      write: (b) => (calls.push(`write ${b}`), written),
      send: (b) => void calls.push(`send ${b}`),
      sync: () => (calls.push("sync"), synced),
      commit: (now) => (calls.push(`commit at ${now}`), committed),
      release: (c) => void calls.push(`release ${c}`),
    },
  };
}

test("new entries are written, sent, synced, then the commit point is taken at the step's own instant, then replies are released", () => {
  const { step, calls } = recorder("b1");
  expect(replicate(step, 42)).toBe(true);
  expect(calls).toEqual(["take", "write b1", "send b1", "sync", "commit at 42", "release 7"]);
});

test("with nothing new, the commit point still moves (a backup's ack) and releases", () => {
  const { step, calls } = recorder(undefined);
  expect(replicate(step, 42)).toBe(true);
  expect(calls).toEqual(["take", "commit at 42", "release 7"]);
});

test("a failed write sends, syncs, commits and releases nothing", () => {
  const { step, calls } = recorder("b1", { written: false });
  expect(replicate(step, 42)).toBe(false);
  expect(calls).toEqual(["take", "write b1"]);
});

test("a failed sync commits and releases nothing: what a backup got was never acknowledged", () => {
  const { step, calls } = recorder("b1", { synced: false });
  expect(replicate(step, 42)).toBe(false);
  expect(calls).toEqual(["take", "write b1", "send b1", "sync"]);
});

test("held replies leave in log order, only up to the commit point; a step-down refuses the rest", () => {
  const held = new HeldQueue<{ index: number; name: string }>();
  for (const [index, name] of [[1, "a"], [2, "b"], [2, "c"], [4, "d"]] as const) held.hold({ index, name });
  const sent: string[] = [];
  held.release(2, (r) => void sent.push(r.name));
  expect(sent).toEqual(["a", "b", "c"]);
  held.release(3, (r) => void sent.push(r.name));
  expect(sent).toEqual(["a", "b", "c"]);
  const refused: string[] = [];
  held.refuseAll((r) => void refused.push(r.name));
  expect(refused).toEqual(["d"]);
  expect(held.length).toBe(0);
  // A new epoch's log may restart lower: refusing all starts the order over.
  held.hold({ index: 1, name: "e" });
});

test("a reply held under an older index than the one before it is a bug", () => {
  const held = new HeldQueue<{ index: number }>();
  held.hold({ index: 5 });
  expect(() => held.hold({ index: 4 })).toThrow(AssertionError);
});
