// The SDK's failover rules: spreading over servers, moving on without waiting
// while one is up, backoff only after a full round, and which errors re-send.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { DEFAULT_RETRY, idempotencyKeyOf, nextStep, ServerRotation } from "../../src/sdk/failover.ts";

const retry = { ...DEFAULT_RETRY, minDelayMs: 100, maxDelayMs: 1_000 };

describe("ServerRotation", () => {
  test("starts where the random number points, so clients spread over the list", () => {
    expect([0, 0.34, 0.67, 0.999].map((r) => new ServerRotation(3, r, retry).current)).toEqual([0, 1, 2, 2]);
    const seen = new Set<number>();
    const prng = new Prng(7);
    for (let i = 0; i < 200; i++) seen.add(new ServerRotation(4, prng.next(), retry).current);
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });

  test("a failure moves to the next server at once; a full round of failures pauses with doubling backoff", () => {
    const r = new ServerRotation(2, 0, retry);
    const steps: Array<[number, number]> = [];
    for (let i = 0; i < 8; i++) {
      const delay = r.failed(1); // random 1: no jitter, the base delay
      steps.push([r.current, delay]);
    }
    expect(steps).toEqual([[1, 0], [0, 100], [1, 0], [0, 200], [1, 0], [0, 400], [1, 0], [0, 800]]);
  });

  test("the pause is capped and jittered below the base", () => {
    const r = new ServerRotation(1, 0, retry);
    const prng = new Prng(11);
    for (let i = 0; i < 50; i++) {
      const d = r.failed(prng.next());
      const base = Math.min(1_000, 100 * 2 ** i);
      if (d < base / 2 - 1 || d > base) throw new Error(`round ${i}: ${d} outside [${base / 2}, ${base}] (seed 11)`);
    }
  });

  test("a connection resets the rounds: the next failure moves on without a pause", () => {
    const r = new ServerRotation(2, 0, retry);
    r.failed(1);
    r.failed(1);
    r.failed(1);
    r.connected();
    expect(r.failed(1)).toBe(0);
    expect(r.failed(1)).toBe(100);
  });

  test("refuses an empty server list", () => {
    expect(() => new ServerRotation(0, 0, retry)).toThrow(RangeError);
  });
});

describe("nextStep", () => {
  test("a lost connection fails over, unless the server closed it for cause", () => {
    for (const code of ["E_UNAVAILABLE", "E_SHUTTING_DOWN", "E_SLOW_READER", "E_IDLE_TIMEOUT"] as const) expect(nextStep(code, true)).toBe("failover");
    for (const code of ["E_UNAUTHORIZED", "E_BAD_FRAME", "E_BAD_VERSION"] as const) expect(nextStep(code, true)).toBe("reject");
  });

  test("a coordinator that is no longer primary fails over; a router between leaders pauses", () => {
    expect(nextStep("E_NOT_PRIMARY", false)).toBe("failover");
    expect(nextStep("E_UNAVAILABLE", false)).toBe("pause");
    expect(nextStep("E_SHUTTING_DOWN", false)).toBe("pause");
  });

  test("back-pressure and user errors go to the caller", () => {
    for (const code of ["E_QUEUE_FULL", "E_BAD_REQUEST", "E_UNKNOWN_TASK", "E_UNAUTHORIZED", "E_CYCLE", "E_TOO_LARGE"] as const) {
      expect(nextStep(code, false)).toBe("reject");
    }
  });
});

describe("idempotencyKeyOf", () => {
  test("keeps the caller's key; generates one otherwise", () => {
    expect(idempotencyKeyOf("order-7", () => "x")).toBe("order-7");
    expect(idempotencyKeyOf(undefined, () => "u1")).toBe("sdk-u1");
    expect(idempotencyKeyOf("", () => "u2")).toBe("sdk-u2");
  });
});
