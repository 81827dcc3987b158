// Where a task with an idempotency key goes (src/core/shard-map.ts). With the
// cluster's shard count given, a key names the same shard whichever shards are
// known yet, so a retry cannot land elsewhere and make a second task; without
// it the key hashes over the shards known, and can move as they come.

import { expect, test } from "bun:test";
import { ShardMap } from "../../src/core/shard-map.ts";

const key = (s: string) => new TextEncoder().encode(s);
const pickKey = (map: ShardMap, s: string) => {
  const bytes = key(s);
  return map.pick(bytes, 0, bytes.length);
};
const KEYS = Array.from({ length: 200 }, (_, i) => `order-${i}`);

test("with a shard count, a key names one shard among all of them, known or not, the same in every map", () => {
  const starting = new ShardMap(3); // a router that has heard from no coordinator yet
  const later = new ShardMap(3);
  for (const s of [2, 0, 1]) later.add(s);
  const seen = new Set<number>();
  for (const k of KEYS) {
    const shard = pickKey(starting, k);
    expect(shard).toBe(pickKey(later, k));
    expect(shard).toBeGreaterThanOrEqual(0);
    expect(shard).toBeLessThan(3);
    seen.add(shard);
  }
  expect([...seen].sort()).toEqual([0, 1, 2]);
  // A shard going away does not move the keys that hashed to the others.
  const shrunk = new ShardMap(3);
  shrunk.add(0);
  for (const k of KEYS) expect(pickKey(shrunk, k)).toBe(pickKey(later, k));
});

test("with a shard count, a shard not heard from yet is unheard (a refusal there is retryable); one past the count never is", () => {
  const map = new ShardMap(2);
  expect(map.unheard()).toEqual([0, 1]);
  expect(map.add(0)).toBeUndefined();
  expect(map.unheard()).toEqual([1]);
  // A coordinator configured outside the count: said once, routable when asked for by id, never unheard.
  expect(map.add(5)).toContain("outside --shards 2");
  expect(map.add(5)).toBeUndefined();
  expect(map.known).toContain(5);
  expect(map.unheard()).toEqual([1]);
});

test("without a shard count, the second shard heard from is said once: keys may move", () => {
  const map = new ShardMap();
  expect(map.add(0)).toBeUndefined();
  expect(map.add(1)).toContain("no --shards");
  expect(map.add(2)).toBeUndefined();
  expect(map.unheard()).toEqual([]);
});

test("without a shard count, keys hash over the shards known: one learned later moves some keys (why --shards exists)", () => {
  const map = new ShardMap();
  expect(pickKey(map, "order-1")).toBe(-1);
  map.add(0);
  const before = KEYS.map((k) => pickKey(map, k));
  expect(new Set(before)).toEqual(new Set([0]));
  map.add(1);
  const after = KEYS.map((k) => pickKey(map, k));
  expect(after.filter((s, i) => s !== before[i]!).length).toBeGreaterThan(0);
});

test("tasks without a key go round-robin over the known shards, with or without a count", () => {
  for (const map of [new ShardMap(), new ShardMap(4)]) {
    map.add(0);
    map.add(1);
    const empty = new Uint8Array(0);
    expect([0, 1, 2, 3].map(() => map.pick(empty, 0, 0))).toEqual([0, 1, 0, 1]);
  }
});
