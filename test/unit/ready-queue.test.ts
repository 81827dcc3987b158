// ReadyQueue: lowest priority number first, FIFO within a level, including
// pushes of a better level after the hint has moved past it.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { ReadyQueue } from "../../src/core/ready-queue.ts";
import type { Task } from "../../src/core/task.ts";

function task(id: number, priority: number): Task {
  return {
    id, priority, type: "t", payload: new Uint8Array(0), maxAttempts: 1, timeoutMs: 1, idempotencyKey: "", submittedAt: 0,
    state: "queued", attempt: 0, workerId: 0, leasedAt: 0, leaseExpiresAt: 0, watcher: 0, watchRequestId: 0, output: undefined, errors: [], finishedAt: 0,
  };
}

describe("ReadyQueue", () => {
  test("empty pops undefined", () => {
    const q = new ReadyQueue();
    expect(q.pop()).toBeUndefined();
    expect(q.length).toBe(0);
  });

  test("priority order, FIFO within a level, levels 0 and 255 included", () => {
    const q = new ReadyQueue();
    const input: Array<[number, number]> = [[1, 255], [2, 0], [3, 7], [4, 0], [5, 255], [6, 7]];
    for (const [id, p] of input) q.push(task(id, p));
    expect(q.length).toBe(6);
    const out: number[] = [];
    for (let t = q.pop(); t !== undefined; t = q.pop()) out.push(t.id);
    expect(out).toEqual([2, 4, 3, 6, 1, 5]);
    expect(q.length).toBe(0);
  });

  test("a better level pushed after pops moved the hint is still found first", () => {
    const q = new ReadyQueue();
    q.push(task(1, 5));
    q.push(task(2, 9));
    expect(q.pop()!.id).toBe(1);
    expect(q.pop()!.id).toBe(2);
    expect(q.pop()).toBeUndefined(); // hint now past every level
    q.push(task(3, 200));
    q.push(task(4, 3));
    expect(q.pop()!.id).toBe(4);
    expect(q.pop()!.id).toBe(3);
  });

  test("random interleaving matches a sorted reference (seed=9)", () => {
    const prng = new Prng(9);
    const q = new ReadyQueue();
    let ref: Task[] = [];
    for (let step = 0; step < 20_000; step++) {
      if (prng.int(2) === 0) {
        const t = task(step, prng.int(4) === 0 ? prng.int(256) : prng.int(3));
        q.push(t);
        ref.push(t);
      } else {
        const best = ref.reduce<Task | undefined>((b, t) => (b === undefined || t.priority < b.priority ? t : b), undefined);
        expect(q.pop()).toBe(best);
        if (best) ref = ref.filter((t) => t !== best);
      }
      expect(q.length).toBe(ref.length);
    }
  });
});
