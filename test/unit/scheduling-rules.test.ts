// The ordering and timing rules of the scheduler core, one rule per test, with
// an explicit `now`: priority, aging (no starvation), earliest deadline first
// within a band, deadlines, delayed tasks, retry backoff, per-task heartbeats,
// when a dispatch would change nothing.
// Dependencies and workflows: scheduling-dag.test.ts. Cancel and the
// dead-letter queue: scheduling-cancel-dlq.test.ts. Tags, retention, watchers
// and snapshots: scheduling-tags-watch.test.ts.

import { describe, expect, test } from "bun:test";
import { retryDelayMs } from "../../src/core/backoff-policy.ts";
import type { Backoff } from "../../src/core/task.ts";
import { assigned, complete, failAttempt, leaseNow, makeScheduler, request, state, submitOk } from "../support/scheduler-fixtures.ts";

describe("priority", () => {
  test("lower priority number first, whatever the submission order", () => {
    const s = makeScheduler();
    const ids = new Map([3, 0, 2, 1].map((p) => [p, submitOk(s, 0, { priority: p })]));
    s.workerJoined(1, 10, [], 0);
    expect(leaseNow(s, 0, 1)).toEqual([0, 1, 2, 3].map((p) => ids.get(p)!));
  });

  test("priority 0 and 255 are accepted; 256, -1 and 0.5 are E_BAD_REQUEST", () => {
    const s = makeScheduler();
    submitOk(s, 0, { priority: 0 });
    submitOk(s, 0, { priority: 255 });
    for (const priority of [256, -1, 0.5]) {
      expect(s.submit(request({ priority }), 0)).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
    }
    expect(s.counters.submitted).toBe(2);
  });
});

describe("aging: no starvation", () => {
  const AGING_MS = 100;

  /**
   * One worker with one slot; a low-priority task waits from time 0 while every
   * tick (one aging period) brings `perTick` new priority-0 tasks. Each tick the
   * worker finishes what it had and takes the best queued task. Returns the tick
   * at which the low task was leased, or undefined if never within `ticks`.
   */
  function feed(lowPriority: number, perTick: number, ticks: number, agingMs = AGING_MS): number | undefined {
    const s = makeScheduler({ agingMs, workerTimeoutMs: 1e12, leaseMs: 1e12, defaultTimeoutMs: 1e12 });
    s.workerJoined(1, 1, [], 0);
    const low = submitOk(s, 0, { priority: lowPriority });
    let running: number | undefined;
    for (let k = 0; k < ticks; k++) {
      const now = k * AGING_MS;
      if (running !== undefined) complete(s, running, now);
      for (let i = 0; i < perTick; i++) submitOk(s, now, { priority: 0 });
      [running] = leaseNow(s, now, 1);
      if (running === low) return k;
    }
    return undefined;
  }

  test("with one new high-priority task per period, the low one is leased exactly after (priority difference) x agingMs", () => {
    for (const difference of [1, 3, 7]) {
      expect({ difference, leasedAtTick: feed(difference, 1, 50) }).toEqual({ difference, leasedAtTick: difference });
    }
  });

  test("under overload (two new tasks per period, capacity one) it is still leased: after the older high-priority backlog, never before its time", () => {
    const difference = 5;
    const tick = feed(difference, 2, 200);
    // The 2 x 5 high-priority tasks that entered a better band first go ahead of it, then it wins every tie (older id).
    expect(tick).toBe(2 * difference);
    expect(tick! * AGING_MS).toBeGreaterThanOrEqual(difference * AGING_MS);
  });

  test("without aging (agingMs far beyond the run) the same load starves it: the contrast aging removes", () => {
    expect(feed(5, 2, 200, 1e12)).toBeUndefined();
    expect(feed(5, 1, 200, 1e12)).toBeUndefined();
  });
});

describe("earliest deadline first within a band", () => {
  test("same priority and period: earliest deadline first, tasks without a deadline last, ties by age", () => {
    const s = makeScheduler();
    const none = submitOk(s, 0, { priority: 2 });
    const late = submitOk(s, 0, { priority: 2, deadline: 9000 });
    const early = submitOk(s, 0, { priority: 2, deadline: 3000 });
    const lateToo = submitOk(s, 0, { priority: 2, deadline: 9000 });
    const noneToo = submitOk(s, 0, { priority: 2 });
    s.workerJoined(1, 10, [], 0);
    expect(leaseNow(s, 0, 1)).toEqual([early, late, lateToo, none, noneToo]);
  });

  test("a better band goes first even with a later deadline", () => {
    const s = makeScheduler();
    const urgentLowPriority = submitOk(s, 0, { priority: 3, deadline: 100 });
    const relaxedHighPriority = submitOk(s, 0, { priority: 1, deadline: 90_000 });
    s.workerJoined(1, 10, [], 0);
    expect(leaseNow(s, 0, 1)).toEqual([relaxedHighPriority, urgentLowPriority]);
  });
});

describe("deadlines", () => {
  test("a task not started by its deadline fails with E_DEADLINE at dispatch, and the slot goes to the next task", () => {
    const s = makeScheduler();
    const missed = submitOk(s, 0, { deadline: 50, watcher: 7, watchRequestId: 70 });
    const next = submitOk(s, 0, { priority: 1 });
    s.dispatch(60); // no worker: nothing happens yet
    expect(state(s, missed)).toBe("queued");
    s.workerJoined(1, 1, [], 100);
    s.dispatch(100);
    const ready = s.takeReady();
    expect(ready.assignments.get(1)!.map((t) => t.id)).toEqual([next]);
    expect(ready.finished.map((t) => t.id)).toEqual([missed]);
    expect(ready.notices.map((n) => [n.task.id, n.watcher])).toEqual([[missed, { conn: 7, requestId: 70 }]]);
    const task = s.task(missed)!;
    expect(task).toMatchObject({ state: "failed", attempt: 0, finishedAt: 100 });
    expect(task.errors).toHaveLength(1);
    expect(task.errors[0]).toMatchObject({ attempt: 0, workerId: 0, at: 100 });
    expect(task.errors[0]!.code).toBe("E_DEADLINE");
    expect(s.counters).toMatchObject({ deadlineMissed: 1, failed: 1, submitted: 2 });
    expect(s.deadLetters(0, 10).map((t) => t.id)).toEqual([missed]);
  });

  test("a task started before its deadline runs normally and is not failed when it passes", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { deadline: 100 });
    expect(leaseNow(s, 99, 1)).toEqual([id]);
    s.tick(500);
    complete(s, id, 500);
    expect(state(s, id)).toBe("completed");
    expect(s.counters.deadlineMissed).toBe(0);
  });
});

describe("delayed tasks", () => {
  test("not dispatched before runAt; dispatched at runAt", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    const id = submitOk(s, 0, { runAt: 500 });
    expect(state(s, id)).toBe("delayed");
    expect([s.delayedTotal, s.queuedCount]).toEqual([1, 0]);
    expect(leaseNow(s, 499, 1)).toEqual([]);
    s.tick(499);
    expect(state(s, id)).toBe("delayed");
    expect(leaseNow(s, 500, 1)).toEqual([id]);
    expect(s.delayedTotal).toBe(0);
  });

  test("tick after runAt makes it queued, ranked by when it became ready", () => {
    const s = makeScheduler({ agingMs: 100 });
    const id = submitOk(s, 0, { runAt: 250, priority: 1 });
    s.tick(320);
    expect(s.task(id)).toMatchObject({ state: "queued", band: 3 + 1 });
    expect([s.delayedTotal, s.queuedCount]).toEqual([0, 1]);
  });

  test("a runAt not after now queues at once", () => {
    const s = makeScheduler();
    expect(state(s, submitOk(s, 100, { runAt: 100 }))).toBe("queued");
    expect(state(s, submitOk(s, 100, { runAt: 5 }))).toBe("queued");
  });

  test("delayed tasks are released in runAt order", () => {
    const s = makeScheduler();
    s.workerJoined(1, 10, [], 0);
    const c = submitOk(s, 0, { runAt: 300 });
    const a = submitOk(s, 0, { runAt: 100 });
    const b = submitOk(s, 0, { runAt: 200 });
    expect([leaseNow(s, 150, 1), leaseNow(s, 250, 1), leaseNow(s, 999, 1)]).toEqual([[a], [b], [c]]);
  });
});

describe("retry backoff", () => {
  const fixed: Backoff = { type: "fixed", delayMs: 200, maxDelayMs: 10_000 };
  const exponential: Backoff = { type: "exponential", delayMs: 100, maxDelayMs: 1000 };

  test("fixed: the same delay after every attempt, capped at maxDelayMs", () => {
    expect([1, 2, 3, 10, 100].map((n) => retryDelayMs(fixed, 42, n))).toEqual([200, 200, 200, 200, 200]);
    expect(retryDelayMs({ type: "fixed", delayMs: 500, maxDelayMs: 300 }, 42, 1)).toBe(300);
  });

  test("delayMs 0 retries at once, either type", () => {
    expect(retryDelayMs({ type: "fixed", delayMs: 0, maxDelayMs: 100 }, 1, 3)).toBe(0);
    expect(retryDelayMs({ type: "exponential", delayMs: 0, maxDelayMs: 100 }, 1, 3)).toBe(0);
  });

  test("exponential: the base doubles per attempt up to maxDelayMs; jitter within [base/2, base]", () => {
    for (let taskId = 1; taskId <= 500; taskId++) {
      for (let attempt = 1; attempt <= 12; attempt++) {
        const base = Math.min(1000, 100 * 2 ** (attempt - 1));
        const d = retryDelayMs(exponential, taskId, attempt);
        if (!(d >= base / 2 && d <= base)) throw new Error(`task ${taskId} attempt ${attempt}: ${d} outside [${base / 2}, ${base}]`);
      }
    }
  });

  test("jitter depends only on task id and attempt, and spreads different tasks", () => {
    const once = [1, 2, 3, 4].map((n) => retryDelayMs(exponential, 7, n));
    expect([1, 2, 3, 4].map((n) => retryDelayMs(exponential, 7, n))).toEqual(once);
    const bigId = 3 * 2 ** 40 + 17; // shard 3: the high half of the id counts too
    expect(retryDelayMs(exponential, bigId, 2)).toBe(retryDelayMs(exponential, bigId, 2));
    const spread = new Set(Array.from({ length: 100 }, (_, i) => retryDelayMs(exponential, 1000 + i, 3)));
    expect(spread.size).toBeGreaterThan(20);
  });

  test("huge attempt numbers stay finite and capped", () => {
    for (const attempt of [41, 100, 1e6]) {
      const d = retryDelayMs(exponential, 9, attempt);
      expect(d).toBeGreaterThanOrEqual(500);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });

  test("in the scheduler a failed attempt waits delayed for exactly its backoff, then runs with the next attempt", () => {
    for (const backoff of [fixed, exponential]) {
      const s = makeScheduler({ workerTimeoutMs: 1e9 });
      s.workerJoined(1, 1, [], 0);
      const id = submitOk(s, 0, { maxAttempts: 4, backoff });
      let now = 10;
      expect(leaseNow(s, now, 1)).toEqual([id]);
      for (let attempt = 1; attempt <= 3; attempt++) {
        now += 5;
        failAttempt(s, id, now, `boom ${attempt}`);
        const due = now + retryDelayMs(backoff, id, attempt);
        expect(s.task(id)).toMatchObject({ state: "delayed", runAt: due });
        expect(leaseNow(s, due - 1, 1)).toEqual([]);
        expect(leaseNow(s, due, 1)).toEqual([id]);
        expect(s.task(id)!.attempt).toBe(attempt + 1);
        now = due;
      }
      expect(s.counters.retried).toBe(3);
    }
  });
});

describe("heartbeats naming running tasks", () => {
  test("extend only the leases they name; the others expire and are retried", () => {
    const s = makeScheduler({ leaseMs: 1000, workerTimeoutMs: 10_000 });
    s.workerJoined(1, 2, [], 0);
    const a = submitOk(s, 0);
    const b = submitOk(s, 0);
    s.dispatch(0);
    assigned(s);
    s.heartbeat(1, 800, [a]);
    expect([s.task(a)!.leaseExpiresAt, s.task(b)!.leaseExpiresAt]).toEqual([1800, 1000]);
    s.tick(1000);
    expect([state(s, a), state(s, b)]).toEqual(["leased", "queued"]);
    expect(s.task(b)!.errors[0]!.message).toContain("lease expired");
    s.heartbeat(1, 1500); // names nothing: extends all
    expect(s.task(a)!.leaseExpiresAt).toBe(2500);
  });
});

describe("dispatchWouldChange: whether a DISPATCH is worth logging", () => {
  test("false with every slot busy, for tasks no free worker has the tags for, and with only draining workers free", () => {
    const s = makeScheduler();
    s.workerJoined(1, 1, [], 0);
    submitOk(s, 0);
    submitOk(s, 0);
    expect(s.dispatchWouldChange(1)).toBe(true);
    s.dispatch(1);
    expect(s.queuedCount).toBe(1);
    expect(s.dispatchWouldChange(2)).toBe(false); // the one slot is busy
    s.workerJoined(2, 1, ["cpu"], 2);
    submitOk(s, 3, { tags: ["gpu"] });
    s.dispatch(3); // worker 2 takes the untagged task; the gpu one waits
    s.workerJoined(3, 4, ["cpu"], 4);
    expect(s.dispatchWouldChange(5)).toBe(false); // a free worker, but without the tag
    s.workerJoined(4, 1, ["gpu"], 6);
    s.workerDraining(4);
    expect(s.dispatchWouldChange(7)).toBe(false); // the one with the tag is draining
  });

  test("true when a delayed task is due, even with no worker to take it", () => {
    const s = makeScheduler();
    submitOk(s, 0, { runAt: 100 });
    expect(s.dispatchWouldChange(99)).toBe(false);
    expect(s.dispatchWouldChange(100)).toBe(true);
    s.dispatch(100);
    expect(s.queuedCount).toBe(1);
    expect(s.dispatchWouldChange(101)).toBe(false);
  });
});
