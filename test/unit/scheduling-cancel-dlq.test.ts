// Cancel in every state, and the dead-letter queue (failed tasks: listing,
// requeue, purge, its bound), with an explicit `now`.

import { describe, expect, test } from "bun:test";
import type { SubmitRequest } from "../../src/core/scheduler.ts";
import { complete, failAttempt, finishedIds, leaseNow, makeScheduler, OK, request, state, submitOk } from "../support/scheduler-fixtures.ts";

describe("cancel", () => {
  test("a queued task: cancelled, out of the queue, reported, counted and retained", () => {
    const s = makeScheduler();
    const id = submitOk(s, 0, { watcher: 2, watchRequestId: 20 });
    expect(s.cancel(id, 5)).toBe("cancelled");
    const ready = s.takeReady();
    expect(ready.finished.map((t) => t.id)).toEqual([id]);
    expect(ready.notices.map((n) => n.watcher)).toEqual([{ conn: 2, requestId: 20 }]);
    expect(ready.aborts).toEqual([]);
    expect(s.task(id)).toMatchObject({ state: "cancelled", finishedAt: 5 });
    expect([s.queuedCount, s.retainedCount, s.dlqCount]).toEqual([0, 1, 0]);
    expect(s.counters).toMatchObject({ submitted: 1, cancelled: 1, failed: 0, completed: 0 });
    s.workerJoined(1, 1, [], 5);
    expect(leaseNow(s, 6, 1)).toEqual([]);
  });

  test("a waiting task: cancelled; its parent completing later does not revive it", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const parent = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [parent] });
    const grandchild = submitOk(s, 0, { dependsOn: [child] });
    leaseNow(s, 0, 1);
    expect(s.cancel(child, 1)).toBe("cancelled");
    expect(state(s, grandchild)).toBe("failed"); // its parent was cancelled: E_DEPENDENCY
    expect(s.waitingTotal).toBe(0);
    complete(s, parent, 2);
    expect(state(s, child)).toBe("cancelled");
    expect(leaseNow(s, 3, 1)).toEqual([]);
  });

  test("a delayed task: cancelled and never dispatched at its runAt", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { runAt: 100 });
    expect(s.cancel(id, 50)).toBe("cancelled");
    expect(s.delayedTotal).toBe(0);
    s.tick(200);
    expect(leaseNow(s, 200, 1)).toEqual([]);
    expect([state(s, id), s.queuedCount]).toEqual(["cancelled", 0]);
  });

  test("a leased task: an abort to its worker, the slot freed for the next task, and its late result stale", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const running = submitOk(s, 0);
    const next = submitOk(s, 0);
    expect(leaseNow(s, 0, 1)).toEqual([running]);
    expect(s.cancel(running, 10)).toBe("cancelled");
    const ready = s.takeReady();
    expect(ready.aborts).toEqual([{ workerId: 1, taskId: running, attempt: 1 }]);
    expect(ready.finished.map((t) => t.id)).toEqual([running]);
    expect(s.worker(1)).toMatchObject({ free: 1 });
    expect(s.worker(1)!.leased.size).toBe(0);
    expect(s.leasedTotal).toBe(0);
    expect(leaseNow(s, 11, 1)).toEqual([next]);
    s.result(1, running, 1, OK, Uint8Array.from([9]), 12);
    expect(s.counters).toMatchObject({ staleResults: 1, completed: 0, cancelled: 1 });
    expect(s.task(running)).toMatchObject({ state: "cancelled", output: undefined });
    expect(s.worker(1)!.free).toBe(0); // still held by `next`, not freed by the stale result
  });

  test("a task that already ended is unchanged; an unknown id is undefined", () => {
    const s = makeScheduler();
    s.workerJoined(1, 2, [], 0);
    const done = submitOk(s, 0);
    const failed = submitOk(s, 0, { maxAttempts: 1 });
    leaseNow(s, 0, 1);
    complete(s, done, 1);
    failAttempt(s, failed, 1, "x");
    s.takeReady();
    const before = { ...s.counters };
    expect(s.cancel(done, 2)).toBe("completed");
    expect(s.cancel(failed, 2)).toBe("failed");
    expect(s.cancel(999, 2)).toBeUndefined();
    expect(s.counters).toEqual(before);
    expect(s.takeReady()).toEqual({ assignments: new Map(), finished: [], retried: [], notices: [], aborts: [], lostWorkers: [] });
    expect(s.dlqCount).toBe(1);
  });

  test("a cancelled task frees its room under queueMax", () => {
    const s = makeScheduler({ queueMax: 1 });
    const id = submitOk(s, 0);
    expect(s.submit(request(), 0)).toMatchObject({ ok: false, code: "E_QUEUE_FULL" });
    s.cancel(id, 1);
    submitOk(s, 1);
  });
});

describe("dead-letter queue", () => {
  test("exhausted attempts put the task there with every attempt's error, worker and time", () => {
    const s = makeScheduler({ workerTimeoutMs: 1e9 });
    s.workerJoined(1, 1, [], 0);
    s.workerJoined(2, 1, [], 0);
    const id = submitOk(s, 0, { maxAttempts: 3 });
    const workers: number[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      s.dispatch(attempt * 100);
      workers.push(s.task(id)!.workerId);
      failAttempt(s, id, attempt * 100 + 7, `error ${attempt}`);
    }
    expect(new Set(workers).size).toBe(2); // both workers took a turn
    expect(s.dlqCount).toBe(1);
    const [dead] = s.deadLetters(0, 10);
    expect(dead!.id).toBe(id);
    expect(dead!.state).toBe("failed");
    expect(dead!.errors).toEqual([1, 2, 3].map((n) => ({ attempt: n, workerId: workers[n - 1]!, at: n * 100 + 7, code: "E_HANDLER", message: `error ${n}` })));
    expect(s.retainedCount).toBe(0);
  });

  test("deadLetters pages oldest first", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const ids = Array.from({ length: 5 }, () => submitOk(s, 0, { maxAttempts: 1 }));
    leaseNow(s, 0, 1);
    for (const [i, id] of [...ids].reverse().entries()) failAttempt(s, id, i + 1, "x");
    const oldestFirst = [...ids].reverse();
    expect(s.deadLetters(0, 100).map((t) => t.id)).toEqual(oldestFirst);
    expect(s.deadLetters(1, 2).map((t) => t.id)).toEqual(oldestFirst.slice(1, 3));
    expect(s.deadLetters(4, 10).map((t) => t.id)).toEqual(oldestFirst.slice(4));
    expect(s.deadLetters(5, 10)).toEqual([]);
  });

  test("requeue gives maxAttempts more attempts; attempt numbers keep increasing so old results stay fenced off", () => {
    const s = makeScheduler({ workerTimeoutMs: 1e9 });
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { maxAttempts: 2 });
    for (const attempt of [1, 2]) {
      s.dispatch(attempt);
      failAttempt(s, id, attempt, `first round ${attempt}`);
    }
    expect(state(s, id)).toBe("failed");
    expect(s.counters.failed).toBe(1);
    expect(s.requeue(id, 10)).toBe(true);
    expect(s.task(id)).toMatchObject({ state: "queued", attempt: 2, attemptBase: 2, finishedAt: 0 });
    expect([s.dlqCount, s.counters.failed, s.queuedCount]).toEqual([0, 0, 1]);
    expect(s.requeue(id, 10)).toBe(false); // no longer in the DLQ
    s.dispatch(11);
    expect(s.task(id)).toMatchObject({ state: "leased", attempt: 3 });
    s.result(1, id, 2, OK, Uint8Array.from([1]), 12); // a late answer from before the requeue
    expect(s.counters.staleResults).toBe(1);
    expect(state(s, id)).toBe("leased");
    failAttempt(s, id, 13, "second round 3");
    s.dispatch(14);
    expect(s.task(id)).toMatchObject({ state: "leased", attempt: 4 });
    failAttempt(s, id, 15, "second round 4");
    expect(s.task(id)).toMatchObject({ state: "failed", attempt: 4 });
    expect(s.task(id)!.errors.map((e) => e.attempt)).toEqual([1, 2, 3, 4]);
    expect(s.deadLetters(0, 10).map((t) => t.id)).toEqual([id]);
    expect(s.counters).toMatchObject({ failed: 1, submitted: 1, retried: 2 });
  });

  test("a requeued task can complete, and then leaves the DLQ for the retention list", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { maxAttempts: 1 });
    leaseNow(s, 0, 1);
    failAttempt(s, id, 1, "x");
    expect(finishedIds(s)).toEqual([id]);
    s.requeue(id, 2);
    expect(leaseNow(s, 2, 1)).toEqual([id]);
    complete(s, id, 3);
    expect(finishedIds(s)).toEqual([id]);
    expect([s.dlqCount, s.retainedCount]).toEqual([0, 1]);
    expect(s.counters).toMatchObject({ completed: 1, failed: 0, submitted: 1 });
  });

  test("purge forgets one, then all; unknown ids are ignored", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const ids = Array.from({ length: 3 }, (_, i) => submitOk(s, 0, { maxAttempts: 1, idempotencyKey: `k${i}` }));
    leaseNow(s, 0, 1);
    for (const id of ids) failAttempt(s, id, 1, "x");
    expect(s.purge([ids[1]!, 424242])).toBe(1);
    expect(s.task(ids[1]!)).toBeUndefined();
    expect(s.deadLetters(0, 10).map((t) => t.id)).toEqual([ids[0]!, ids[2]!]);
    expect(s.purge([])).toBe(2);
    expect([s.dlqCount, ...ids.map((id) => s.task(id))]).toEqual([0, undefined, undefined, undefined]);
    expect(s.purge([])).toBe(0);
    expect(s.requeue(ids[0]!, 2)).toBe(false);
    // Their idempotency keys are forgotten with them.
    expect(s.submit(request({ idempotencyKey: "k0" }), 3)).toMatchObject({ ok: true, duplicate: false });
  });

  test("beyond dlqMax the oldest dead letter is evicted", () => {
    const s = makeScheduler({ dlqMax: 2 });
    s.workerJoined(1, 10, [], 0);
    const ids = Array.from({ length: 4 }, () => submitOk(s, 0, { maxAttempts: 1 }));
    leaseNow(s, 0, 1);
    for (const [i, id] of ids.entries()) failAttempt(s, id, i, "x");
    expect(s.deadLetters(0, 10).map((t) => t.id)).toEqual(ids.slice(2));
    expect(s.task(ids[0]!)).toBeUndefined();
    expect(s.task(ids[1]!)).toBeUndefined();
    expect(s.counters.failed).toBe(4);
  });
});

// A dead letter that never ran (failed with E_DEPENDENCY) is placed again on
// requeue, like a new task: it waits for parents not completed, fails again
// while one has failed, and keeps the runAt it was submitted with.
describe("requeue of a task that never ran", () => {
  test("does not run before its parents completed", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const bad = submitOk(s, 0, { maxAttempts: 1 });
    const slow = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [bad, slow] });
    leaseNow(s, 0, 1);
    failAttempt(s, bad, 1, "x"); // child: failed, E_DEPENDENCY
    finishedIds(s);
    expect(s.requeue(child, 2)).toBe(true);
    // `bad` is still failed: the requeued child fails again at once, with a new error, back in the DLQ.
    expect(finishedIds(s)).toEqual([child]);
    expect(leaseNow(s, 2, 1)).not.toContain(child);
    expect(s.task(child)).toMatchObject({ state: "failed", attempt: 0, finishedAt: 2 });
    expect(s.task(child)!.errors.map((e) => `${e.code}: ${e.message}`)).toEqual([1, 2].map(() => `E_DEPENDENCY: parent task ${bad} failed`));
    expect(s.deadLetters(0, 10).map((t) => t.id)).toEqual([bad, child]);
    expect(s.counters).toMatchObject({ failed: 2, submitted: 3 });
  });

  test("keeps the runAt it was submitted with", () => {
    const { s, parent, child } = parentFailedWithChild({ runAt: 5000 });
    s.requeue(parent, 2);
    complete(s, leaseNow(s, 2, 1)[0]!, 3); // the parent now completed
    s.requeue(child, 4);
    expect(leaseNow(s, 4, 1)).toEqual([]);
    expect([state(s, child), s.delayedTotal]).toEqual(["delayed", 1]);
    expect(leaseNow(s, 4999, 1)).toEqual([]);
    expect(leaseNow(s, 5000, 1)).toEqual([child]);
  });

  test("waits for a requeued parent, counting a parent still running once, and runs when both completed", () => {
    const s = makeScheduler({ workerTimeoutMs: 1e9 });
    s.workerJoined(1, 10, [], 0);
    const bad = submitOk(s, 0, { maxAttempts: 1 });
    const slow = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [slow, bad] });
    leaseNow(s, 0, 1);
    failAttempt(s, bad, 1, "x");
    expect(state(s, child)).toBe("failed");
    s.requeue(bad, 2);
    expect(s.requeue(child, 2)).toBe(true);
    expect(s.task(child)).toMatchObject({ state: "waiting", waitingOn: 2 });
    expect([s.waitingTotal, s.dlqCount, s.counters.failed]).toEqual([1, 0, 0]);
    expect(leaseNow(s, 3, 1)).toEqual([bad]);
    // `slow` named the child among its dependants before: completing it must count once, not twice.
    complete(s, slow, 4);
    expect(s.task(child)).toMatchObject({ state: "waiting", waitingOn: 1 });
    complete(s, bad, 5, Uint8Array.from([7]));
    expect(state(s, child)).toBe("queued");
    expect(leaseNow(s, 6, 1)).toEqual([child]);
    complete(s, child, 7);
    expect(s.counters).toMatchObject({ completed: 3, failed: 0 });
  });

  test("fails again when its failed parent is requeued and fails once more", () => {
    const { s, parent, child } = parentFailedWithChild();
    s.requeue(parent, 2);
    s.requeue(child, 2);
    expect(state(s, child)).toBe("waiting");
    failAttempt(s, leaseNow(s, 3, 1)[0]!, 4, "y");
    expect(s.task(child)).toMatchObject({ state: "failed", finishedAt: 4 });
    expect(s.waitingTotal).toBe(0);
  });

  test("fails again when a parent is no longer held: whether it completed is unknown", () => {
    const { s, parent, child } = parentFailedWithChild();
    s.purge([parent]);
    finishedIds(s);
    expect(s.requeue(child, 2)).toBe(true);
    expect(state(s, child)).toBe("failed");
    expect(s.task(child)!.errors.at(-1)!.code).toBe("E_DEPENDENCY");
    expect(s.task(child)!.errors.at(-1)!.message).toStartWith(`parent task ${parent} is no longer held`);
    expect(finishedIds(s)).toEqual([child]);
  });

  test("a task that ran and failed on its own is queued at once, even after its parents were evicted", () => {
    const s = makeScheduler({ retainedMs: 10 });
    s.workerJoined(1, 10, [], 0);
    const parent = submitOk(s, 0);
    const child = submitOk(s, 0, { dependsOn: [parent], maxAttempts: 1, runAt: 3 });
    leaseNow(s, 0, 1);
    complete(s, parent, 1);
    expect(leaseNow(s, 3, 1)).toEqual([child]);
    failAttempt(s, child, 4, "x");
    s.tick(100);
    expect(s.task(parent)).toBeUndefined();
    s.requeue(child, 100);
    expect(leaseNow(s, 100, 1)).toEqual([child]);
  });
});

/** A worker, a parent with one attempt that failed at 1, and its child failed with it: both dead letters. */
function parentFailedWithChild(childFields: Partial<SubmitRequest> = {}) {
  const s = makeScheduler();
  s.workerJoined(1, 10, [], 0);
  const parent = submitOk(s, 0, { maxAttempts: 1 });
  const child = submitOk(s, 0, { dependsOn: [parent], ...childFields });
  leaseNow(s, 0, 1);
  failAttempt(s, parent, 1, "x");
  return { s, parent, child };
}
