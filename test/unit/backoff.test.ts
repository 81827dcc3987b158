// Backoff: doubling from min to max, jitter only below the base delay.

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { backoffDelayMs } from "../../src/net/backoff.ts";

describe("backoffDelayMs", () => {
  test("with random = 1 (no jitter) the delay doubles from min and stops at max", () => {
    expect([0, 1, 2, 3, 4, 5, 10].map((f) => backoffDelayMs(f, 100, 2000, 1))).toEqual([100, 200, 400, 800, 1600, 2000, 2000]);
  });

  test("with random = 0 the delay is half the base", () => {
    expect([0, 1, 2].map((f) => backoffDelayMs(f, 100, 2000, 0))).toEqual([50, 100, 200]);
  });

  test("always within [base/2, base] for any random in [0, 1)", () => {
    const prng = new Prng(31);
    for (let i = 0; i < 10_000; i++) {
      const failures = prng.int(40);
      const base = Math.min(5000, 50 * 2 ** failures);
      const d = backoffDelayMs(failures, 50, 5000, prng.next());
      if (d < Math.floor(base / 2) || d > base) throw new Error(`failures=${failures}: ${d} outside [${base / 2}, ${base}]`);
    }
  });

  test("huge failure counts neither overflow nor exceed max", () => {
    for (const failures of [31, 100, 1e6, Number.MAX_SAFE_INTEGER]) {
      const d = backoffDelayMs(failures, 100, 30_000, 0.999);
      expect(Number.isFinite(d)).toBe(true);
      expect(d).toBeLessThanOrEqual(30_000);
      expect(d).toBeGreaterThanOrEqual(15_000);
    }
  });
});
