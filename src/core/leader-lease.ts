// How long a leader may still act on its etcd lease, as a pure object. etcd
// starts a keep-alive's TTL when it receives it, which is after we sent it, so
// "sent at + TTL" can only be late, never early: measured on a monotonic clock
// from the send of the last answered keep-alive, less a margin for clock-rate
// differences, the lease cannot have expired in etcd before it ends here. A
// leader stops acknowledging, replying and dispatching at that moment, so a
// paused or partitioned leader fences itself before anyone can replace it.

import { assert } from "./assert.ts";

export class LeaderLease {
  private validUntil = -Infinity;

  /** `marginMs`: subtracted from every TTL (clock-rate drift between us and etcd, and our own reaction time). */
  constructor(private readonly marginMs: number) {
    // A negative margin would let the lease outlive etcd's: a replaced leader could still acknowledge.
    assert(Number.isFinite(marginMs) && marginMs >= 0, "a lease margin only shortens the lease", "marginMs", marginMs);
  }

  /** A keep-alive (or grant) sent at `sentAt` was answered: the lease lives at least `ttlMs` from then. */
  renewed(sentAt: number, ttlMs: number): void {
    if (ttlMs <= 0) return this.lost();
    const until = sentAt + ttlMs - this.marginMs;
    if (until > this.validUntil) this.validUntil = until;
  }

  /** etcd said the lease is gone, or we revoked it. */
  lost(): void {
    this.validUntil = -Infinity;
  }

  isValid(now: number): boolean {
    return now < this.validUntil;
  }

  remainingMs(now: number): number {
    return Math.max(0, this.validUntil - now);
  }
}
