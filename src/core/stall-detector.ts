// Ticks and reads keep a process busy at least every tickMs; a longer gap means
// it stood still (SIGSTOP, a long GC, a starved host). What its peers sent in
// that time is unread in its sockets, not late: a primary must not drop replicas
// from its ISR for it (found by the fault harness: a primary resumed from a 0.7 s
// pause wrote an ISR of itself alone, then died, and nobody could lead).

/** Past this much longer than tickMs between two activities, the process stood still. */
export const STALL_MS = 200;

export class StallDetector {
  private lastActiveAt: number;

  /** `now`: monotonic ms. */
  constructor(private readonly tickMs: number, now: number) {
    this.lastActiveAt = now;
  }

  /** The process is active at `now`: the gap since it was last, when that gap was a stall; else 0. */
  active(now: number): number {
    const gapMs = now - this.lastActiveAt;
    this.lastActiveAt = now;
    return gapMs > STALL_MS + this.tickMs ? gapMs : 0;
  }
}
