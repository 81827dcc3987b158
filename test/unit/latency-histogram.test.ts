// The load generators' latency summary: percentiles in ms from a histogram in µs.

import { expect, test } from "bun:test";
import { newLatencyHistogram, summarizeLatency } from "../../src/client/latency-histogram.ts";

test("the summary reports p50, p99 and p99.9 of what was recorded", () => {
  const h = newLatencyHistogram();
  for (let us = 1; us <= 10_000; us++) h.recordValue(us);
  const s = summarizeLatency(h);
  expect(s.p50).toBeCloseTo(5, 1);
  expect(s.p99).toBeCloseTo(9.9, 1);
  expect(s.p999).toBeCloseTo(9.99, 1);
  expect(s.max).toBeCloseTo(10, 1);
});

test("an empty histogram summarizes to zeros, p99.9 included", () => {
  expect(summarizeLatency(newLatencyHistogram())).toEqual({ min: 0, avg: 0, p50: 0, p95: 0, p99: 0, p999: 0, max: 0 });
});
