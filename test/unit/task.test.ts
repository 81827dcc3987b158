// Task ids encode their shard: any shard and sequence round-trip and stay safe integers.

import { describe, expect, test } from "bun:test";
import { makeTaskId, seqOfTask, shardOfTask, SHARD_MAX } from "../../src/core/task.ts";

describe("task ids", () => {
  test("shard and seq round-trip, at the edges too", () => {
    for (const shard of [0, 1, 2, 17, 1000, SHARD_MAX]) {
      for (const seq of [1, 2, 1000, 2 ** 32, 2 ** 40 - 1]) {
        const id = makeTaskId(shard, seq);
        expect(Number.isSafeInteger(id)).toBe(true);
        expect(shardOfTask(id)).toBe(shard);
        expect(seqOfTask(id)).toBe(seq);
      }
    }
  });

  test("shard 0 ids are the sequence numbers; ids of different shards never collide", () => {
    expect(makeTaskId(0, 5)).toBe(5);
    expect(makeTaskId(1, 1)).not.toBe(makeTaskId(0, 1));
    expect(makeTaskId(0, 2 ** 40 - 1)).toBeLessThan(makeTaskId(1, 0));
  });

  test("SHARD_MAX keeps every id below 2^53 and survives f64 on the wire", () => {
    const id = makeTaskId(SHARD_MAX, 2 ** 40 - 1);
    expect(id).toBeLessThan(2 ** 53);
    const view = new DataView(new ArrayBuffer(8));
    view.setFloat64(0, id, true);
    expect(view.getFloat64(0, true)).toBe(id);
  });
});
