// The scheduler core, driven event by event with an explicit `now`: submission,
// the lifecycle, credits, spreading, ordering and idempotency keys.
// Failures, leases, workers and retention: scheduler-leases.test.ts.

import { describe, expect, test } from "bun:test";
import { seqOfTask, shardOfTask } from "../../src/core/task.ts";
import { assigned, FAIL, makeScheduler, OK, request, state, submitOk, TEST_OPTIONS, utf8 } from "../support/scheduler-fixtures.ts";

describe("submit", () => {
  test("a new task is queued with the defaults, and its id encodes the shard", () => {
    const s = makeScheduler();
    const id = submitOk(s, 100, { type: "cpu", payload: Uint8Array.from([1]), priority: 4 });
    const task = s.task(id)!;
    expect(shardOfTask(id)).toBe(TEST_OPTIONS.shard);
    expect(seqOfTask(id)).toBe(1);
    expect(task).toMatchObject({
      type: "cpu", priority: 4, state: "queued", attempt: 0, workerId: 0, submittedAt: 100,
      maxAttempts: TEST_OPTIONS.defaultMaxAttempts, timeoutMs: TEST_OPTIONS.defaultTimeoutMs, errors: [],
    });
    expect(seqOfTask(submitOk(s, 100))).toBe(2);
    expect(s.queuedCount).toBe(2);
    expect(s.counters.submitted).toBe(2);
  });

  test("explicit maxAttempts and timeoutMs are kept", () => {
    const s = makeScheduler();
    const task = s.task(submitOk(s, 0, { maxAttempts: 7, timeoutMs: 250 }))!;
    expect(task.maxAttempts).toBe(7);
    expect(task.timeoutMs).toBe(250);
  });

  test("an empty type is E_BAD_REQUEST and nothing is queued", () => {
    const s = makeScheduler();
    const outcome = s.submit(request({ type: "" }), 0);
    expect(outcome).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    expect(s.queuedCount).toBe(0);
    expect(s.counters.submitted).toBe(0);
  });

  test("E_QUEUE_FULL at queueMax, counting queued and leased; room again once a task finishes", () => {
    const s = makeScheduler({ queueMax: 3 });
    s.workerJoined(1, 1, [], 0);
    const first = submitOk(s, 0);
    s.dispatch(0); // one leased
    submitOk(s, 0);
    submitOk(s, 0);
    const refused = s.submit(request(), 0);
    expect(refused).toMatchObject({ ok: false, code: "E_QUEUE_FULL" });
    if (!refused.ok) expect(refused.message).toContain("3");
    expect(s.counters.rejectedQueueFull).toBe(1);
    expect(s.counters.submitted).toBe(3);
    s.result(1, first, 1, OK, new Uint8Array(0), 1);
    expect(s.submit(request(), 1).ok).toBe(true);
  });
});

describe("lifecycle: submit, dispatch, result", () => {
  test("queued -> leased -> completed, with the effects of each step", () => {
    const s = makeScheduler();
    const id = submitOk(s, 0, { watcher: 9, watchRequestId: 42 });
    s.dispatch(0);
    expect(assigned(s).size).toBe(0); // no worker yet
    s.workerJoined(1, 4, ["gpu"], 10);
    s.dispatch(20);
    expect(assigned(s)).toEqual(new Map([[1, [id]]]));
    expect(s.task(id)).toMatchObject({ state: "leased", attempt: 1, workerId: 1, leasedAt: 20, leaseExpiresAt: 20 + TEST_OPTIONS.leaseMs });
    expect(s.worker(1)!.free).toBe(3);
    expect(s.leasedTotal).toBe(1);
    expect(s.queuedCount).toBe(0);

    const output = Uint8Array.from([7, 7]);
    s.result(1, id, 1, OK, output, 30);
    const ready = s.takeReady();
    expect(ready.finished.map((t) => t.id)).toEqual([id]);
    expect(ready.finished[0]).toMatchObject({ state: "completed", output, finishedAt: 30, watchers: [] });
    expect(ready.notices).toEqual([{ task: s.task(id)!, watcher: { conn: 9, requestId: 42 } }]);
    expect(s.worker(1)).toMatchObject({ free: 4, done: 1, failed: 0, lastSeenAt: 30 });
    expect(s.leasedTotal).toBe(0);
    expect(s.counters).toMatchObject({ submitted: 1, completed: 1, failed: 0, retried: 0, staleResults: 0 });
    expect(s.retainedCount).toBe(1);
  });

  test("takeReady hands each effect over once", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    submitOk(s, 0);
    s.dispatch(0);
    expect(s.takeReady().assignments.size).toBe(1);
    expect(s.takeReady()).toEqual({ assignments: new Map(), finished: [], retried: [], notices: [], aborts: [], lostWorkers: [] });
  });

  test("a second result for a completed task is stale and changes nothing", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0);
    s.dispatch(0);
    s.result(1, id, 1, OK, Uint8Array.from([1]), 1);
    s.takeReady();
    s.result(1, id, 1, OK, Uint8Array.from([2]), 2);
    expect(s.counters.staleResults).toBe(1);
    expect(s.counters.completed).toBe(1);
    expect(s.task(id)!.output).toEqual(Uint8Array.from([1]));
    expect(s.takeReady().finished).toEqual([]);
    expect(s.worker(1)!.free).toBe(1);
  });

  test("results for unknown tasks, queued tasks or from another worker are stale", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    s.workerJoined(2, 1, [], 0);
    const a = submitOk(s, 0);
    s.dispatch(0);
    const holder = s.task(a)!.workerId;
    const other = holder === 1 ? 2 : 1;
    const queued = submitOk(s, 0, { priority: 1 });
    s.result(holder, 999_999, 1, OK, new Uint8Array(0), 1);
    s.result(holder, queued, 0, OK, new Uint8Array(0), 1);
    s.result(other, a, 1, OK, new Uint8Array(0), 1);
    s.result(77, a, 1, OK, new Uint8Array(0), 1); // a worker that never joined
    expect(s.counters.staleResults).toBe(4);
    expect(state(s, a)).toBe("leased");
    expect(state(s, queued)).toBe("queued");
  });
});

describe("credit and spread", () => {
  test("a worker with 2 slots never holds more than 2 leases", () => {
    const s = makeScheduler();
    s.workerJoined(1, 2, [], 0);
    const ids = Array.from({ length: 5 }, () => submitOk(s, 0));
    s.dispatch(0);
    expect(assigned(s).get(1)).toEqual(ids.slice(0, 2));
    s.dispatch(1);
    expect(assigned(s).size).toBe(0);
    expect(s.worker(1)!.leased.size).toBe(2);
    s.result(1, ids[0]!, 1, OK, new Uint8Array(0), 2);
    s.dispatch(2);
    expect(assigned(s).get(1)).toEqual([ids[2]!]);
    expect(s.worker(1)!.leased.size).toBe(2);
    expect(s.worker(1)!.free).toBe(0);
  });

  test("a worker with 0 slots gets nothing", () => {
    const s = makeScheduler();
    s.workerJoined(1, 0, [], 0);
    submitOk(s, 0);
    s.dispatch(0);
    expect(assigned(s).size).toBe(0);
    expect(s.queuedCount).toBe(1);
  });

  test("tasks spread evenly over two workers", () => {
    const s = makeScheduler();
    s.workerJoined(1, 100, [], 0);
    s.workerJoined(2, 100, [], 0);
    for (let i = 0; i < 10; i++) submitOk(s, 0);
    s.dispatch(0);
    const got = assigned(s);
    expect(got.get(1)).toHaveLength(5);
    expect(got.get(2)).toHaveLength(5);
  });

  test("an odd count differs by at most one; the smaller credit is filled and the rest goes to the other", () => {
    const s = makeScheduler();
    s.workerJoined(1, 100, [], 0);
    s.workerJoined(2, 100, [], 0);
    for (let i = 0; i < 11; i++) submitOk(s, 0);
    s.dispatch(0);
    const sizes = [...assigned(s).values()].map((ids) => ids.length).sort();
    expect(sizes).toEqual([5, 6]);

    const t = makeScheduler();
    t.workerJoined(1, 2, [], 0);
    t.workerJoined(2, 10, [], 0);
    for (let i = 0; i < 10; i++) submitOk(t, 0);
    t.dispatch(0);
    const got = assigned(t);
    expect(got.get(1)).toHaveLength(2);
    expect(got.get(2)).toHaveLength(8);
  });

  test("single tasks alternate between idle workers", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    s.workerJoined(2, 10, [], 0);
    const owners: number[] = [];
    for (let i = 0; i < 6; i++) {
      const id = submitOk(s, i);
      s.dispatch(i);
      owners.push(s.task(id)!.workerId);
    }
    expect(new Set(owners.slice(0, 2)).size).toBe(2);
    expect(owners.filter((w) => w === 1)).toHaveLength(3);
  });
});

describe("ordering", () => {
  test("priority 0 first, then 1, 2, ...; FIFO within a priority", () => {
    const s = makeScheduler();
    const order: Array<[number, number]> = [[5, 0], [0, 1], [2, 2], [0, 3], [5, 4], [2, 5], [255, 6], [0, 7]];
    const ids = new Map<number, number>();
    for (const [priority, tag] of order) ids.set(submitOk(s, 0, { priority }), tag);
    s.workerJoined(1, 1, [], 0);
    const tags: number[] = [];
    for (let step = 1; step <= order.length; step++) {
      s.dispatch(step);
      const [id] = assigned(s).get(1)!;
      tags.push(ids.get(id!)!);
      s.result(1, id!, 1, OK, new Uint8Array(0), step);
    }
    expect(tags).toEqual([1, 3, 7, 2, 5, 0, 4, 6]);
  });

  test("one batch to one worker is in priority then FIFO order", () => {
    const s = makeScheduler();
    const a = submitOk(s, 0, { priority: 3 });
    const b = submitOk(s, 0, { priority: 1 });
    const c = submitOk(s, 0, { priority: 3 });
    const d = submitOk(s, 0, { priority: 1 });
    s.workerJoined(1, 10, [], 0);
    s.dispatch(0);
    expect(assigned(s).get(1)).toEqual([b, d, a, c]);
  });

  test("a higher-priority task submitted later overtakes queued lower-priority ones", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const low = Array.from({ length: 3 }, () => submitOk(s, 0, { priority: 9 }));
    s.dispatch(0);
    expect(assigned(s).get(1)).toEqual([low[0]!]);
    const urgent = submitOk(s, 1, { priority: 0 });
    s.result(1, low[0]!, 1, OK, new Uint8Array(0), 2);
    s.dispatch(2);
    expect(assigned(s).get(1)).toEqual([urgent]);
  });
});

describe("idempotency keys", () => {
  test("a retried submission returns the same task id, without a new task", () => {
    const s = makeScheduler();
    const first = s.submit(request({ idempotencyKey: "k1" }), 0);
    const again = s.submit(request({ idempotencyKey: "k1", type: "other" }), 5);
    expect(first).toMatchObject({ ok: true, duplicate: false });
    expect(again).toEqual({ ok: true, taskId: (first as { taskId: number }).taskId, duplicate: true });
    expect(s.queuedCount).toBe(1);
    expect(s.counters).toMatchObject({ submitted: 1, duplicates: 1 });
    expect(s.submit(request({ idempotencyKey: "k2" }), 0)).toMatchObject({ duplicate: false });
  });

  test("a duplicate is accepted even when the queue is full", () => {
    const s = makeScheduler({ queueMax: 1 });
    const id = submitOk(s, 0, { idempotencyKey: "k" });
    expect(s.submit(request(), 0).ok).toBe(false);
    expect(s.submit(request({ idempotencyKey: "k" }), 0)).toEqual({ ok: true, taskId: id, duplicate: true });
  });

  test("a duplicate's watcher is told at the end too, each request on a connection included", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { idempotencyKey: "k", watcher: 1, watchRequestId: 10 });
    s.submit(request({ idempotencyKey: "k", watcher: 2, watchRequestId: 20 }), 1);
    s.submit(request({ idempotencyKey: "k", watcher: 1, watchRequestId: 11 }), 1);
    expect(s.takeReady()).toMatchObject({ finished: [], retried: [], notices: [] });
    s.dispatch(1);
    s.result(1, id, 1, OK, new Uint8Array(0), 2);
    const ready = s.takeReady();
    expect(ready.finished.map((t) => t.id)).toEqual([id]);
    expect(ready.notices.map((n) => [n.task.id, n.watcher])).toEqual([[id, { conn: 1, requestId: 10 }], [id, { conn: 2, requestId: 20 }], [id, { conn: 1, requestId: 11 }]]);
  });

  test("a duplicate of a finished task with a watcher is a notice at once, not a second finish", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { idempotencyKey: "done" });
    s.dispatch(0);
    s.result(1, id, 1, OK, Uint8Array.from([5]), 1);
    s.takeReady();
    expect(s.submit(request({ idempotencyKey: "done", watcher: 3, watchRequestId: 33 }), 2)).toEqual({ ok: true, taskId: id, duplicate: true });
    const ready = s.takeReady();
    expect(ready.finished).toEqual([]);
    expect(ready.notices).toHaveLength(1);
    expect(ready.notices[0]!.watcher).toEqual({ conn: 3, requestId: 33 });
    expect(ready.notices[0]!.task).toMatchObject({ id, state: "completed", output: Uint8Array.from([5]) });
    expect(s.counters.completed).toBe(1);
    // Without a watcher there is nobody to tell.
    s.submit(request({ idempotencyKey: "done" }), 3);
    expect(s.takeReady()).toMatchObject({ finished: [], retried: [], notices: [] });
  });

  test("a duplicate of a task failed for good is a notice too", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { idempotencyKey: "bad", maxAttempts: 1 });
    s.dispatch(0);
    s.result(1, id, 1, FAIL, utf8.encode("nope"), 1);
    s.takeReady();
    s.submit(request({ idempotencyKey: "bad", watcher: 4 }), 2);
    const [notice] = s.takeReady().notices;
    expect(notice!.task).toMatchObject({ id, state: "failed", errors: [{ attempt: 1, workerId: 1, at: 1, code: "E_HANDLER", message: "nope" }] });
    expect(notice!.watcher).toEqual({ conn: 4, requestId: 0 });
  });
});
