// How far another replica's wall clock is from ours, from one-way messages that
// carry its clock. Each sample is "our clock when it arrived − its clock when it
// left" = the true offset + the time in transit, and transit is never negative: a
// message that sat in a socket through a pause (ours or the network's) looks like
// a huge offset. So the smallest recent sample is the estimate (NTP's minimum-
// delay filter), and a burst of stale messages cannot fake a skewed clock while a
// prompt one from the last window is still remembered.

/**
 * How long a prompt clock sample outvotes delayed ones (a burst read after a pause).
 * A clock that jumps ahead shows within this; one that jumps back shows at once.
 */
export const CLOCK_WINDOW_MS = 10_000;

export class ClockOffsetFilter {
  /** Minimum of the samples in the current and the previous half-window. */
  private current = Infinity;
  private previous = Infinity;
  private currentSince: number | undefined;

  /** `windowMs`: how long a prompt sample keeps outvoting stale ones (on the monotonic clock). */
  constructor(private readonly windowMs: number) {}

  /** `offsetMs`: our wall clock at arrival minus the sender's at departure; `now`: monotonic ms. */
  sample(offsetMs: number, now: number): void {
    this.age(now);
    if (offsetMs < this.current) this.current = offsetMs;
  }

  /** The estimate, or undefined with no sample in the last window. */
  estimate(now: number): number | undefined {
    this.age(now);
    const best = Math.min(this.current, this.previous);
    return best === Infinity ? undefined : best;
  }

  private age(now: number): void {
    const half = this.windowMs / 2;
    if (this.currentSince === undefined) this.currentSince = now;
    if (now - this.currentSince < half) return;
    // Two half-windows or more have passed: nothing remembered is recent enough.
    this.previous = now - this.currentSince < 2 * half ? this.current : Infinity;
    this.current = Infinity;
    this.currentSince = now;
  }
}
