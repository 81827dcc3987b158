// A cumulative latency histogram with fixed bucket bounds, for Prometheus:
// counts never reset, so a scraper can compute rates and quantiles over any window.

/** Upper bounds in ms: 1-2-5 steps from 1 ms to 60 s. */
export const LATENCY_BUCKETS_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000, 60000] as const;

export interface LatencyHistogram {
  /** Upper bounds in ms (the +Inf bucket is implied by count). */
  le: number[];
  /** Observations at or below each bound (cumulative). */
  counts: number[];
  sumMs: number;
  count: number;
}

export class LatencyBuckets {
  private readonly counts: number[];
  private sumMs = 0;
  private count = 0;

  /** `boundsMs`: ascending upper bounds; the task-latency ones unless a caller measures something faster. */
  constructor(private readonly boundsMs: readonly number[] = LATENCY_BUCKETS_MS) {
    this.counts = new Array<number>(boundsMs.length).fill(0);
  }

  record(latencyMs: number): void {
    this.sumMs += latencyMs;
    this.count++;
    for (let i = 0; i < this.boundsMs.length; i++) {
      if (latencyMs <= this.boundsMs[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }

  snapshot(): LatencyHistogram {
    const cumulative: number[] = [];
    let running = 0;
    for (const c of this.counts) cumulative.push((running += c));
    return { le: [...this.boundsMs], counts: cumulative, sumMs: this.sumMs, count: this.count };
  }
}
