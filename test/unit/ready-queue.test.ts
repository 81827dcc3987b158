// ReadyQueue: lowest band first (priority plus aging), earliest deadline within
// a band, then lowest id; a worker only gets tasks whose tags it has all of and
// whose type it handles.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { ReadyQueue, type Capabilities } from "../../src/core/ready-queue.ts";
import type { Task } from "../../src/core/task.ts";
import { makeTask } from "../support/scheduler-fixtures.ts";

/** Aging so slow that every push at a small `now` lands in band = priority. */
const NO_AGING_MS = 1e12;
/** A worker with these tags, handling these types (undefined: any type). */
function caps(tags: readonly string[] = [], types?: readonly string[]): Capabilities {
  return { tagSet: new Set(tags), typeSet: types === undefined ? undefined : new Set(types) };
}
const ANY = caps();

function task(id: number, priority: number, fields: Partial<Task> = {}): Task {
  return makeTask({ id, priority, ...fields });
}

/** Pops as the scheduler does: the popped task leaves the queued state. */
function pop(q: ReadyQueue, worker: Capabilities = ANY): Task | undefined {
  const t = q.popFor(worker);
  if (t !== undefined) t.state = "leased";
  return t;
}

function drain(q: ReadyQueue, worker: Capabilities = ANY): number[] {
  const out: number[] = [];
  for (let t = pop(q, worker); t !== undefined; t = pop(q, worker)) out.push(t.id);
  return out;
}

describe("ReadyQueue", () => {
  test("empty pops undefined", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    expect(pop(q)).toBeUndefined();
    expect(q.length).toBe(0);
    expect(q.ordered()).toEqual([]);
  });

  test("priority order, FIFO (lowest id) within a level, levels 0 and 255 included", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    const input: Array<[number, number]> = [[1, 255], [2, 0], [3, 7], [4, 0], [5, 255], [6, 7]];
    for (const [id, p] of input) q.push(task(id, p), 0);
    expect(q.length).toBe(6);
    expect(q.ordered().map((t) => t.id)).toEqual([2, 4, 3, 6, 1, 5]);
    expect(drain(q)).toEqual([2, 4, 3, 6, 1, 5]);
    expect(q.length).toBe(0);
  });

  test("a better level pushed after the queue emptied is still found first", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    q.push(task(1, 5), 0);
    q.push(task(2, 9), 0);
    expect(pop(q)!.id).toBe(1);
    expect(pop(q)!.id).toBe(2);
    expect(pop(q)).toBeUndefined();
    q.push(task(3, 200), 0);
    q.push(task(4, 3), 0);
    expect(pop(q)!.id).toBe(4);
    expect(pop(q)!.id).toBe(3);
  });

  test("push sets band = floor(now / agingMs) + priority", () => {
    const q = new ReadyQueue(100);
    const a = task(1, 4);
    const b = task(2, 0);
    q.push(a, 0); // band 4
    q.push(b, 399); // band 3
    expect([a.band, b.band]).toEqual([4, 3]);
    expect(drain(q)).toEqual([2, 1]);
    const c = task(3, 0);
    q.push(c, 400); // band 4, ties with a task of priority 4 pushed at 0
    expect(c.band).toBe(4);
  });

  test("within a band the earliest deadline goes first, tasks without one last, then lowest id", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    q.push(task(1, 2), 0);
    q.push(task(2, 2, { deadline: 900 }), 0);
    q.push(task(3, 2, { deadline: 100 }), 0);
    q.push(task(4, 2, { deadline: 900 }), 0);
    q.push(task(5, 1, { deadline: 5000 }), 0); // better band beats any deadline
    q.push(task(6, 2), 0);
    expect(drain(q)).toEqual([5, 3, 2, 4, 1, 6]);
  });

  test("a tagged task only goes to a worker with all its tags; others still flow", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    q.push(task(1, 0, { tags: ["gpu", "eu"] }), 0);
    q.push(task(2, 5), 0);
    q.push(task(3, 1, { tags: ["gpu"] }), 0);
    expect(drain(q, caps(["eu"]))).toEqual([2]);
    expect(q.length).toBe(2);
    expect(q.unmatched([caps(["eu"])])).toBe(2);
    expect(q.unmatched([caps(["gpu"])])).toBe(1);
    expect(q.unmatched([caps(["eu", "gpu"])])).toBe(0);
    expect(drain(q, caps(["gpu", "eu", "ssd"]))).toEqual([1, 3]);
  });

  test("a task only goes to a worker that handles its type; one that handles none waits, unmatched", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    q.push(task(1, 0, { type: "add" }), 0);
    q.push(task(2, 5, { type: "noop" }), 0);
    q.push(task(3, 1, { type: "add", tags: ["gpu"] }), 0);
    q.push(task(4, 0, { type: "resize" }), 0);
    const plain = caps([], ["noop", "sleep"]);
    expect(q.hasFor(caps([], ["cpu"]))).toBe(false);
    expect(q.unmatched([plain])).toBe(3);
    expect(drain(q, plain)).toEqual([2]);
    const adder = caps(["gpu"], ["noop", "add"]);
    expect(q.unmatched([plain, adder])).toBe(1);
    expect(drain(q, adder)).toEqual([1, 3]);
    expect(q.unmatched([plain, adder])).toBe(1);
    expect(drain(q, ANY)).toEqual([4]); // a worker that announced no types takes any (registered before types existed)
  });

  test("with no workers every queued task is unmatched, untagged ones included", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    q.push(task(1, 0), 0);
    q.push(task(2, 0, { tags: ["x"] }), 0);
    expect(q.unmatched([])).toBe(2);
    expect(q.unmatched([caps()])).toBe(1);
  });

  test("a task that left the queue another way (forget) is skipped and not counted", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    const a = task(1, 0);
    q.push(a, 0);
    q.push(task(2, 1), 0);
    a.state = "cancelled";
    q.forget(a);
    expect(q.length).toBe(1);
    expect(q.ordered().map((t) => t.id)).toEqual([2]);
    expect(drain(q)).toEqual([2]);
  });

  test("random interleaving matches a sorted reference, with aging, deadlines, tags and types (seed=9)", () => {
    const prng = new Prng(9);
    const agingMs = 50;
    const q = new ReadyQueue(agingMs);
    const tagPool = [[], [], ["a"], ["b"], ["a", "b"]] as const;
    const typePool = ["x", "x", "y", "z"] as const;
    const workerPool = [caps(), caps(["a"]), caps(["a", "b"]), caps([], ["x"]), caps(["a", "b"], ["y", "z"])];
    let ref: Task[] = [];
    let now = 0;
    const key = (t: Task): [number, number, number] => [t.band, t.deadline === 0 ? Infinity : t.deadline, t.id];
    const less = (x: Task, y: Task): boolean => {
      const [a, b] = [key(x), key(y)];
      for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
      return false;
    };
    try {
      for (let step = 0; step < 20_000; step++) {
        now += prng.int(10);
        if (prng.int(2) === 0) {
          const t = task(step, prng.int(4) === 0 ? prng.int(256) : prng.int(3), {
            deadline: prng.int(3) === 0 ? 0 : now + prng.int(500), tags: tagPool[prng.int(tagPool.length)]!, type: typePool[prng.int(typePool.length)]!,
          });
          q.push(t, now);
          expect(t.band).toBe(Math.floor(now / agingMs) + t.priority);
          ref.push(t);
        } else {
          const worker = workerPool[prng.int(workerPool.length)]!;
          const eligible = ref.filter((t) => t.tags.every((tag) => worker.tagSet.has(tag)) && (worker.typeSet?.has(t.type) ?? true));
          const best = eligible.reduce<Task | undefined>((b, t) => (b === undefined || less(t, b) ? t : b), undefined);
          expect(pop(q, worker)).toBe(best);
          if (best) ref = ref.filter((t) => t !== best);
        }
        expect(q.length).toBe(ref.length);
      }
    } catch (err) {
      throw new Error(`seed=9: ${String(err)}`, { cause: err });
    }
  });

  test("a heap that runs empty is removed, by pop or by stale entries, so types that come and go leave nothing behind", () => {
    const q = new ReadyQueue(NO_AGING_MS);
    // Many one-off types (a type per batch job, say): each heap goes once its task is taken.
    for (let i = 0; i < 1000; i++) {
      q.push(task(i + 1, 0, { type: `job-${i}`, tags: i % 2 === 0 ? [] : [`t${i}`] }), 0);
      expect(q.heapCount).toBe(1);
      expect(pop(q, caps([`t${i}`]))?.id).toBe(i + 1);
      expect(q.heapCount).toBe(0);
    }
    // A heap left holding only stale entries (forgotten tasks) goes on the next scan; the others stay and still pop in order.
    const stale = task(5001, 0, { type: "gone" });
    q.push(stale, 0);
    q.push(task(5002, 1, { type: "a" }), 0);
    q.push(task(5003, 0, { type: "b" }), 0);
    q.forget(stale);
    stale.state = "cancelled";
    expect(q.heapCount).toBe(3);
    expect(pop(q)?.id).toBe(5003); // the scan drops "gone", the pop empties "b"
    expect(q.heapCount).toBe(1);
    expect(drain(q)).toEqual([5002]);
    expect(q.heapCount).toBe(0);
    // A type pushed again after its heap went gets a fresh one.
    q.push(task(6001, 0, { type: "a" }), 0);
    expect(q.heapCount).toBe(1);
    expect(drain(q)).toEqual([6001]);
  });
});

test("queued tasks are counted per submitted priority as they are pushed, popped and forgotten", () => {
  const q = new ReadyQueue(NO_AGING_MS);
  const tasks = [task(1, 5), task(2, 0), task(3, 5), task(4, 200)];
  for (const t of tasks) q.push(t, 0);
  expect(q.byPriority()).toEqual([{ priority: 0, queued: 1 }, { priority: 5, queued: 2 }, { priority: 200, queued: 1 }]);
  expect(pop(q)!.id).toBe(2);
  const cancelled = tasks[3]!;
  q.forget(cancelled);
  cancelled.state = "cancelled";
  // Priorities with nothing queued are left out, so the list stays as short as what is queued.
  expect(q.byPriority()).toEqual([{ priority: 5, queued: 2 }]);
  expect(drain(q)).toEqual([1, 3]);
  expect(q.byPriority()).toEqual([]);
});
