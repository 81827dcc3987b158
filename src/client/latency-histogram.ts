// Latency recording for the load generators: an HDR histogram in microseconds
// (3 significant digits, up to an hour), summarized in milliseconds.

import * as hdr from "hdr-histogram-js";

export interface LatencySummary {
  min: number;
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  /** The 99.9th percentile: the tail a rate sweep plots (bench/rate-sweep.ts). */
  p999: number;
  max: number;
}

/** The longest latency the histogram records: one hour, in µs. */
const LATENCY_US_MAX = 3_600_000_000;

export function newLatencyHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3 });
}

/** Percentiles in ms (µs precision); all zero when nothing was recorded. */
export function summarizeLatency(histogram: hdr.Histogram): LatencySummary {
  if (histogram.totalCount === 0) return { min: 0, avg: 0, p50: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  const ms = (us: number) => Math.round(us) / 1000;
  return {
    min: ms(histogram.minNonZeroValue),
    avg: ms(histogram.mean),
    p50: ms(histogram.getValueAtPercentile(50)),
    p95: ms(histogram.getValueAtPercentile(95)),
    p99: ms(histogram.getValueAtPercentile(99)),
    p999: ms(histogram.getValueAtPercentile(99.9)),
    max: ms(histogram.maxValue),
  };
}
