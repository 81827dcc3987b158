// The live progress line a client run shows on a terminal.

import { expect, test } from "bun:test";
import { progressLine } from "../../src/client/run-tally.ts";

test("ended of total with the percentage, the rate since the start, p99 so far and what went wrong", () => {
  expect(progressLine({ completed: 2_400, failed: 100, retried: 7, p99Ms: 3.25, errors: 9 }, 10_000, 1_000)).toBe(
    "2500/10000 (25%)  2400 tasks/s  p99 3.25 ms  failed 100  retried 7  errors 9",
  );
  expect(progressLine({ completed: 0, failed: 0, retried: 0, p99Ms: 0, errors: 0 }, 10, 0)).toBe("0/10 (0%)  0 tasks/s  p99 0 ms  failed 0  retried 0  errors 0");
});
