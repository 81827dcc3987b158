// What a worker keeps per shard across a failover (worker/kept-results.ts): the
// last results sent, bounded, and those held while the shard has no primary,
// bounded with the oldest dropped and counted; a new primary gets both, once
// for the held ones.

import { expect, test } from "bun:test";
import { KeptResults } from "../../src/worker/kept-results.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);

test("a new primary gets the recent results, then the held ones; the held ones only once", () => {
  let dropped = 0;
  const kept = new KeptResults(() => 2, 2, () => dropped++);
  const frame = bytes(9, 1, 2, 3, 9);
  kept.sent(0, frame, 1, 2);
  kept.sent(0, frame, 2, 3);
  kept.sent(0, frame, 3, 4); // past the recent bound: the oldest goes
  kept.hold(0, bytes(7));
  kept.hold(0, bytes(8));
  kept.hold(0, bytes(6)); // past the held bound: the oldest goes, counted
  kept.hold(1, bytes(5));
  expect(dropped).toBe(1);
  expect(kept.waitingCount).toBe(3);
  expect(kept.takeForNewPrimary(0).map((b) => [...b])).toEqual([[2], [3], [8], [6]]);
  expect(kept.waitingCount).toBe(1);
  expect(kept.takeForNewPrimary(0).map((b) => [...b])).toEqual([[2], [3]]);
});

test("a held result is a copy: the executor's ring may reuse its bytes", () => {
  const kept = new KeptResults(() => 4, 4, () => {});
  const ring = bytes(1, 2);
  kept.hold(0, ring.subarray(0, 2));
  ring[0] = 99;
  expect([...kept.takeForNewPrimary(0)[0]!]).toEqual([1, 2]);
});
