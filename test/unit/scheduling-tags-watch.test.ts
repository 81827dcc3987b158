// Worker tags and task types, retention by age, watchers, and the snapshot
// round trip of all the scheduling state, with an explicit `now`.

import { describe, expect, test } from "bun:test";
import type { Scheduler } from "../../src/core/scheduler.ts";
import { Scheduler as SchedulerClass } from "../../src/core/scheduler.ts";
import { WATCHERS_MAX } from "../../src/core/lifecycle.ts";
import { applyEntry, encodeWorkerJoined, Ev } from "../../src/coordinator/event-log.ts";
import { Reader } from "../../src/protocol/codec.ts";
import { entry } from "../fuzz/fuzz-support.ts";
import { assigned, complete, failAttempt, leaseNow, makeScheduler, request, state, submitOk, TEST_OPTIONS } from "../support/scheduler-fixtures.ts";

describe("worker tags", () => {
  test("a tagged task goes only to a worker with all its tags", () => {
    const s = makeScheduler();
    s.workerJoined(1, 5, [], 0);
    s.workerJoined(2, 5, ["gpu", "ssd"], 0);
    s.workerJoined(3, 5, ["gpu"], 0);
    const both = submitOk(s, 0, { tags: ["ssd", "gpu"] });
    const gpu = Array.from({ length: 4 }, () => submitOk(s, 0, { tags: ["gpu"] }));
    s.dispatch(0);
    const got = assigned(s);
    expect(got.get(2)).toContain(both);
    expect(got.get(1)).toBeUndefined();
    for (const id of gpu) expect([2, 3]).toContain(s.task(id)!.workerId);
    expect(s.unmatchedCount).toBe(0);
  });

  test("a task needing tags no worker has waits queued and is counted unmatched; untagged tasks still flow", () => {
    const s = makeScheduler();
    s.workerJoined(1, 5, ["gpu"], 0);
    const tpu = submitOk(s, 0, { tags: ["tpu"], priority: 0 });
    const plain = Array.from({ length: 3 }, () => submitOk(s, 0, { priority: 9 }));
    expect(leaseNow(s, 0, 1)).toEqual(plain);
    expect(state(s, tpu)).toBe("queued");
    expect([s.queuedCount, s.unmatchedCount]).toEqual([1, 1]);
    s.workerJoined(2, 1, ["tpu", "x"], 1);
    expect(s.unmatchedCount).toBe(0);
    expect(leaseNow(s, 1, 2)).toEqual([tpu]);
  });

  test("with no worker at all every queued task is unmatched; a full matching worker does not make a task unmatched", () => {
    const s = makeScheduler();
    submitOk(s, 0);
    submitOk(s, 0, { tags: ["gpu"] });
    expect(s.unmatchedCount).toBe(2);
    s.workerJoined(1, 0, ["gpu"], 0);
    expect(s.unmatchedCount).toBe(0);
  });
});

describe("task types", () => {
  test("a mixed fleet: tasks of a custom type go only to the worker that handles it, none burns an attempt", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0, ["noop", "sleep", "cpu", "wordcount"]);
    s.workerJoined(2, 10, [], 0, ["noop", "sleep", "cpu", "wordcount", "add"]);
    const adds = Array.from({ length: 20 }, () => submitOk(s, 0, { type: "add", maxAttempts: 1 }));
    s.dispatch(0);
    const got = assigned(s);
    expect(got.get(1)).toBeUndefined();
    expect(got.get(2)).toEqual(adds.slice(0, 10));
    expect([s.queuedCount, s.unmatchedCount]).toEqual([10, 0]); // waiting for worker 2's slots, which can run them
    for (const id of adds.slice(0, 10)) complete(s, id, 1);
    // Each dispatch shares the queue over the workers with free slots (worker 1 among them): the shell dispatches again while dispatchWouldChange.
    const second: number[] = [];
    for (let round = 0; round < 5 && s.dispatchWouldChange(1); round++) {
      s.dispatch(1);
      second.push(...(assigned(s).get(2) ?? []));
    }
    expect(second).toEqual(adds.slice(10));
    expect(s.counters.failed).toBe(0);
  });

  test("a type no connected worker handles waits queued, counted unmatched, until one joins", () => {
    const s = makeScheduler();
    s.workerJoined(1, 5, ["gpu"], 0, ["noop"]);
    const resize = submitOk(s, 0, { type: "resize", tags: ["gpu"] });
    const plain = submitOk(s, 0, { priority: 9 });
    expect(s.dispatchWouldChange(0)).toBe(true);
    expect(leaseNow(s, 0, 1)).toEqual([plain]);
    expect([state(s, resize), s.unmatchedCount]).toEqual(["queued", 1]);
    expect(s.dispatchWouldChange(1)).toBe(false);
    s.workerJoined(2, 1, [], 1, ["resize"]);
    expect(s.unmatchedCount).toBe(1); // handles the type, lacks the tag
    s.workerJoined(3, 1, ["gpu"], 1, ["resize"]);
    expect(s.unmatchedCount).toBe(0);
    expect(leaseNow(s, 2, 3)).toEqual([resize]);
  });

  test("a worker that announced no types (registered before workers did) runs any type", () => {
    const s = makeScheduler();
    s.workerJoined(1, 5, [], 0);
    const odd = submitOk(s, 0, { type: "anything" });
    expect(leaseNow(s, 0, 1)).toEqual([odd]);
  });

  test("WORKER_JOINED carries the types; an entry without them (the old format) means any type", () => {
    const s = makeScheduler();
    const apply = (bytes: Uint8Array) => applyEntry(s, new Reader().reset(bytes));
    apply(entry(Ev.WORKER_JOINED, 0, 1, encodeWorkerJoined(2, ["gpu"], ["add", "日本語"])));
    apply(entry(Ev.WORKER_JOINED, 0, 2, encodeWorkerJoined(3, [])));
    const old = new Uint8Array([3, 0, 0, 0, 0]); // u32 slots | u8 no tags, as written before types existed
    apply(entry(Ev.WORKER_JOINED, 0, 3, old));
    expect(s.worker(1)!.types).toEqual(["add", "日本語"]);
    expect([s.worker(2)!.types, s.worker(3)!.types, s.worker(3)!.slots]).toEqual([undefined, undefined, 3]);
    expect(() => encodeWorkerJoined(1, [], Array.from({ length: 5000 }, (_, i) => `t${i}`))).toThrow(/at most/);
  });
});

describe("retention by age", () => {
  test("completed and cancelled tasks are forgotten once older than retainedMs (at tick); dead letters are not", () => {
    const s = makeScheduler({ retainedMs: 1000, workerTimeoutMs: 1e9 });
    s.workerJoined(1, 5, [], 0);
    const done = submitOk(s, 0, { idempotencyKey: "done" });
    const bad = submitOk(s, 0, { maxAttempts: 1 });
    const cancelled = submitOk(s, 0, { runAt: 10_000 });
    leaseNow(s, 0, 1);
    complete(s, done, 100);
    failAttempt(s, bad, 100, "x");
    s.cancel(cancelled, 300);
    s.tick(1100); // exactly retainedMs after: kept
    expect([state(s, done), state(s, cancelled)]).toEqual(["completed", "cancelled"]);
    s.tick(1101);
    expect(s.task(done)).toBeUndefined();
    expect(state(s, cancelled)).toBe("cancelled");
    expect(s.retainedCount).toBe(1);
    s.tick(1301);
    expect(s.task(cancelled)).toBeUndefined();
    expect(s.retainedCount).toBe(0);
    expect(state(s, bad)).toBe("failed");
    expect(s.submit(request({ idempotencyKey: "done" }), 1302)).toMatchObject({ ok: true, duplicate: false });
    expect(s.counters.completed).toBe(1); // forgetting is not un-counting
  });
});

describe("watchers", () => {
  test("two watchers of one task are both told when it ends, once", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { watcher: 1, watchRequestId: 10 });
    expect(s.watchTask(id, { conn: 2, requestId: 20 })).toBe(true);
    expect(s.task(id)!.watchers).toEqual([{ conn: 1, requestId: 10 }, { conn: 2, requestId: 20 }]);
    leaseNow(s, 0, 1);
    complete(s, id, 1);
    const ready = s.takeReady();
    expect(ready.notices.map((n) => [n.task.id, n.watcher])).toEqual([[id, { conn: 1, requestId: 10 }], [id, { conn: 2, requestId: 20 }]]);
    expect(s.task(id)!.watchers).toEqual([]);
    expect(s.takeReady().notices).toEqual([]);
  });

  test("a watch of a task that already ended is a notice at once; of an unknown task, false", () => {
    const s = makeScheduler();
    const id = submitOk(s, 0);
    s.cancel(id, 1);
    s.takeReady();
    expect(s.watchTask(id, { conn: 3, requestId: 30 })).toBe(true);
    const ready = s.takeReady();
    expect(ready.notices.map((n) => [n.task.id, n.task.state, n.watcher])).toEqual([[id, "cancelled", { conn: 3, requestId: 30 }]]);
    expect(ready.finished).toEqual([]);
    expect(s.watchTask(987654, { conn: 3, requestId: 31 })).toBe(false);
  });

  test("two requests on one connection (a router's link carries many clients) are both told; the same request twice, once", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { watcher: 1, watchRequestId: 10, idempotencyKey: "k" });
    // A second client behind the same router submits the same key: a duplicate, watched under its own request id.
    const again = s.submit(request({ watcher: 1, watchRequestId: 11, idempotencyKey: "k" }), 0);
    expect(again).toEqual({ ok: true, taskId: id, duplicate: true });
    s.watchTask(id, { conn: 1, requestId: 11 });
    expect(s.task(id)!.watchers).toEqual([{ conn: 1, requestId: 10 }, { conn: 1, requestId: 11 }]);
    leaseNow(s, 0, 1);
    complete(s, id, 1);
    expect(s.takeReady().notices.map((n) => n.watcher.requestId)).toEqual([10, 11]);
  });

  test(`a task keeps at most ${WATCHERS_MAX} waiting requests, dropping the oldest`, () => {
    const s = makeScheduler();
    const id = submitOk(s, 0, { watcher: 1, watchRequestId: 0 });
    for (let r = 1; r <= WATCHERS_MAX + 5; r++) s.watchTask(id, { conn: 1, requestId: r });
    const watchers = s.task(id)!.watchers;
    expect(watchers.length).toBe(WATCHERS_MAX);
    expect(watchers[0]!.requestId).toBe(6);
    expect(watchers.at(-1)!.requestId).toBe(WATCHERS_MAX + 5);
  });
});

/** The effects of a batch with task records reduced to ids, so two schedulers' effects compare. */
function effects(s: Scheduler) {
  const r = s.takeReady();
  return {
    assignments: [...r.assignments].map(([w, ts]) => [w, ts.map((t) => [t.id, t.attempt])]),
    finished: r.finished.map((t) => [t.id, t.state]),
    notices: r.notices.map((n) => [n.task.id, n.watcher]),
    aborts: r.aborts,
    lostWorkers: r.lostWorkers,
  };
}

describe("snapshots", () => {
  const options = { ...TEST_OPTIONS, agingMs: 100, retainedMs: 5000, dlqMax: 10, workerTimeoutMs: 1e9, leaseMs: 2000 };

  /** A scheduler holding a task in every state, tags, watchers, backoff, a DLQ and a workflow. */
  function busy(): { s: Scheduler; ids: Record<string, number> } {
    const s = new SchedulerClass(options);
    s.workerJoined(1, 2, ["gpu"], 0);
    s.workerJoined(2, 1, [], 0, ["noop", "w2"]);
    const ids: Record<string, number> = {};
    ids.done = submitOk(s, 0, { idempotencyKey: "done" });
    ids.bad = submitOk(s, 0, { maxAttempts: 1 });
    ids.gone = submitOk(s, 0);
    s.dispatch(0);
    complete(s, ids.done, 10, Uint8Array.from([1, 2]));
    failAttempt(s, ids.bad, 10, "broken");
    s.cancel(ids.gone, 10);
    ids.running = submitOk(s, 20, { tags: ["gpu"], watcher: 4, watchRequestId: 40, timeoutMs: 8000 });
    ids.retrying = submitOk(s, 20, { maxAttempts: 5, backoff: { type: "exponential", delayMs: 300, maxDelayMs: 5000 } });
    s.dispatch(20);
    failAttempt(s, ids.retrying, 30, "flaky");
    ids.child = submitOk(s, 40, { dependsOn: [ids.running] });
    ids.later = submitOk(s, 40, { runAt: 3000, priority: 2 });
    ids.tpu = submitOk(s, 40, { tags: ["tpu"] });
    ids.untyped = submitOk(s, 40, { type: "nobody-runs-this", tags: ["tpu"] });
    ids.urgent = submitOk(s, 250, { priority: 1, deadline: 2500 });
    ids.low = submitOk(s, 50, { priority: 7 });
    const wf = s.submitWorkflow([{ ...request(), dependsOn: [] }, { ...request({ type: "w2" }), dependsOn: [{ node: 0 }, { taskId: ids.child }] }], 60);
    if (!wf.ok) throw new Error(wf.message);
    [ids.wf0, ids.wf1] = wf.taskIds as [number, number];
    s.watchTask(ids.child, { conn: 5, requestId: 50 });
    s.takeReady();
    return { s, ids };
  }

  test("the snapshot holds every state, and restoring it gives the same snapshot", () => {
    const { s, ids } = busy();
    const states = Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, state(s, id)]));
    expect(states).toMatchObject({
      done: "completed", bad: "failed", gone: "cancelled", running: "leased", retrying: "delayed", child: "waiting",
      later: "delayed", tpu: "queued", untyped: "queued", urgent: "queued", low: "queued", wf0: "queued", wf1: "waiting",
    });
    const snapshot = s.exportState();
    expect(snapshot.workers.map((w) => w.types)).toEqual([undefined, ["noop", "w2"]]);
    const restored = SchedulerClass.fromState(options, structuredClone(snapshot));
    expect(restored.exportState()).toEqual(snapshot);
    expect(restored.worker(2)!.typeSet).toEqual(new Set(["noop", "w2"]));
    expect([restored.queuedCount, restored.leasedTotal, restored.waitingTotal, restored.delayedTotal, restored.dlqCount, restored.retainedCount, restored.unmatchedCount])
      .toEqual([s.queuedCount, s.leasedTotal, s.waitingTotal, s.delayedTotal, s.dlqCount, s.retainedCount, s.unmatchedCount]);
  });

  test("the original and the restored copy then react identically to the same events", () => {
    const { s, ids } = busy();
    const restored = SchedulerClass.fromState(options, structuredClone(s.exportState()));
    const steps: Array<[string, (x: Scheduler) => void]> = [
      ["dispatch", (x) => {
        x.dispatch(100);
        expect(x.task(ids.wf0!)!.state).toBe("leased");
      }],
      ["complete running", (x) => complete(x, ids.running!, 200, Uint8Array.from([7]))],
      ["dispatch after release", (x) => x.dispatch(400)],
      ["tpu worker joins", (x) => x.workerJoined(3, 1, ["tpu"], 500)],
      ["heartbeat naming one", (x) => x.heartbeat(1, 600, [ids.running!])],
      ["dispatch", (x) => x.dispatch(600)],
      ["cancel a leased task", (x) => expect(x.cancel(ids.wf0!, 700)).toBe("cancelled")],
      ["requeue", (x) => x.requeue(ids.bad!, 800)],
      ["tick past runAt and deadline", (x) => x.tick(3000)],
      ["dispatch", (x) => x.dispatch(3000)],
      ["watch", (x) => x.watchTask(ids.low!, { conn: 9, requestId: 90 })],
      ["worker 2 leaves", (x) => x.workerLeft(2, 3100)],
      ["tick far later (leases, retention)", (x) => x.tick(20_000)],
      ["dispatch", (x) => x.dispatch(20_000)],
      ["purge", (x) => x.purge([])],
    ];
    for (const [what, step] of steps) {
      step(s);
      step(restored);
      expect({ what, effects: effects(restored) }).toEqual({ what, effects: effects(s) });
      expect({ what, state: restored.exportState() }).toEqual({ what, state: s.exportState() });
    }
    // The events did reach what they were meant to: a missed deadline, expiries, retention by age, the purge.
    expect(s.counters).toMatchObject({ submitted: 13, deadlineMissed: 1, cancelled: 2 });
    expect(s.counters.expiredLeases).toBeGreaterThan(0);
    expect([s.retainedCount, s.dlqCount]).toEqual([0, 0]);
  });
});
