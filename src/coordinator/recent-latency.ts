// Latency of recently finished tasks, for stats and dashboards: two histograms
// that take turns, so a report always covers between one and two windows.

import * as hdr from "hdr-histogram-js";

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 2 });
}

export class RecentLatency {
  private current = newHistogram();
  private previous = newHistogram();
  private windowStartedAt = 0;

  constructor(private readonly windowMs: number) {}

  /** One finished task's latency in ms, at time `now`. */
  record(now: number, latencyMs: number): void {
    this.rotate(now);
    this.current.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
  }

  summary(now: number): { p50: number; p99: number; max: number } {
    this.rotate(now);
    const both = newHistogram();
    both.add(this.previous);
    both.add(this.current);
    const ms = (us: number) => Math.round(us) / 1000;
    const result = both.totalCount === 0
      ? { p50: 0, p99: 0, max: 0 }
      : { p50: ms(both.getValueAtPercentile(50)), p99: ms(both.getValueAtPercentile(99)), max: ms(both.maxValue) };
    both.destroy();
    return result;
  }

  private rotate(now: number): void {
    if (now - this.windowStartedAt < this.windowMs) return;
    const twoWindowsPassed = now - this.windowStartedAt >= 2 * this.windowMs;
    [this.previous, this.current] = [this.current, this.previous];
    this.current.reset();
    if (twoWindowsPassed) this.previous.reset();
    this.windowStartedAt = now;
  }
}
