// Open-loop schedule arithmetic: how many tasks a run has, when each is due,
// and that latency runs from the intended send time, so a stalled sender shows
// its stall (no coordinated omission).

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { dueCount, intendedSendMs, latencyUs, planOpenLoop, waitBeforeMs, type OpenLoopPlan } from "../../src/client/open-loop-schedule.ts";

/** The definition dueCount must match: the number of tasks whose intended time is at or before elapsedMs. */
function dueByCounting(plan: OpenLoopPlan, elapsedMs: number): number {
  let n = 0;
  for (let i = 0; i < plan.tasks; i++) if (intendedSendMs(plan, i) <= elapsedMs) n++;
  return n;
}

describe("planOpenLoop", () => {
  test("rate x duration tasks, capped by an explicit task count", () => {
    expect(planOpenLoop(500, 2)).toEqual({ rate: 500, tasks: 1000 });
    expect(planOpenLoop(500, 2, 300)).toEqual({ rate: 500, tasks: 300 });
    expect(planOpenLoop(500, 2, 5000)).toEqual({ rate: 500, tasks: 1000 });
  });

  test("rounds the product instead of flooring a float that lands just below an integer", () => {
    expect(100 * 0.29).toBeLessThan(29);
    expect(planOpenLoop(100, 0.29).tasks).toBe(29);
  });

  test("always at least one task; rejects rates and durations that are not positive", () => {
    expect(planOpenLoop(1, 0.001).tasks).toBe(1);
    for (const [rate, duration] of [[0, 1], [-5, 1], [Number.NaN, 1], [Infinity, 1], [10, 0], [10, -1]] as const) {
      expect(() => planOpenLoop(rate, duration)).toThrow(RangeError);
    }
  });
});

describe("schedule", () => {
  const plan = planOpenLoop(500, 2);

  test("task i is due i / rate seconds after the start", () => {
    expect([0, 1, 2, 999].map((i) => intendedSendMs(plan, i))).toEqual([0, 2, 4, 1998]);
  });

  test("dueCount counts the tasks whose time has come, task 0 at once, never past the end", () => {
    expect(dueCount(plan, -1)).toBe(0);
    expect(dueCount(plan, 0)).toBe(1);
    expect(dueCount(plan, 1.999)).toBe(1);
    expect(dueCount(plan, 2)).toBe(2);
    expect(dueCount(plan, 1998)).toBe(1000);
    expect(dueCount(plan, 1e9)).toBe(1000);
  });

  test("dueCount equals counting one by one, for awkward rates and random times", () => {
    const seed = 20261201;
    const prng = new Prng(seed);
    for (const rate of [1, 3, 7, 333.333, 2000, 48_271.5, 1e6]) {
      const p = planOpenLoop(rate, 0.5, 5000);
      const lastMs = intendedSendMs(p, p.tasks - 1);
      const times = [0, lastMs, lastMs + 1, ...Array.from({ length: 200 }, () => prng.next() * lastMs * 1.1)];
      // Exactly on an intended time too: where a separately rounded division would be off by one.
      for (let i = 0; i < p.tasks; i += Math.max(1, Math.floor(p.tasks / 97))) times.push(intendedSendMs(p, i));
      for (const t of times) {
        const got = dueCount(p, t);
        if (got !== dueByCounting(p, t)) throw new Error(`seed=${seed} rate=${rate} t=${t}: dueCount ${got}, counting ${dueByCounting(p, t)}`);
      }
    }
  });

  test("waitBeforeMs: time until the next task, 0 when it is late, undefined when all are sent", () => {
    expect(waitBeforeMs(plan, 1, 0.5)).toBe(1.5);
    expect(waitBeforeMs(plan, 1, 5)).toBe(0);
    expect(waitBeforeMs(plan, 1000, 5)).toBeUndefined();
  });
});

describe("latency from the intended send time", () => {
  test("in whole microseconds, at least 1", () => {
    const plan = planOpenLoop(1000, 1);
    expect(latencyUs(plan, 3, 3.25)).toBe(250);
    expect(latencyUs(plan, 3, 3)).toBe(1);
  });

  test("a sender stalled for 100 ms charges the stall to the tasks it delayed", () => {
    // 1,000/s; the sender sends task 0 at 0, then is stalled (a GC pause, a busy core) until 100 ms,
    // sends the 100 tasks that fell due meanwhile, and each completes 0.5 ms after it is sent.
    const plan = planOpenLoop(1000, 0.2);
    const serviceMs = 0.5;
    const latencies: number[] = [latencyUs(plan, 0, 0 + serviceMs)];
    const due = dueCount(plan, 100);
    expect(due).toBe(101);
    for (let i = 1; i < due; i++) latencies.push(latencyUs(plan, i, 100 + serviceMs));
    // Measured from the actual send, every task would show 0.5 ms: the stall would vanish.
    expect(latencies[0]).toBe(500);
    expect(latencies[1]).toBe(99_500);
    expect(Math.max(...latencies)).toBe(99_500);
    expect(latencies.filter((us) => us > 50_000).length).toBe(50);
  });

  test("a simulated sender with jittered wake-ups sends every task once, in order, never early", () => {
    const seed = 7;
    const prng = new Prng(seed);
    const plan = planOpenLoop(3000, 1);
    let now = 0;
    let sent = 0;
    while (sent < plan.tasks) {
      const due = dueCount(plan, now);
      for (; sent < due; sent++) {
        if (intendedSendMs(plan, sent) > now) throw new Error(`seed=${seed}: task ${sent} sent early at ${now}`);
      }
      const wait = waitBeforeMs(plan, sent, now);
      if (wait === undefined) break;
      // Timers fire late by up to 2 ms, sometimes much later.
      now += wait + prng.next() * 2 + (prng.int(100) === 0 ? 20 : 0);
    }
    expect(sent).toBe(plan.tasks);
  });
});
