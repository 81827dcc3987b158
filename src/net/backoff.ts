// Retry delays for redials and resubmissions.

/** Delay before retry number `failures` (0-based): doubling from min to max, with up to 50% jitter below it. */
export function backoffDelayMs(failures: number, minMs: number, maxMs: number, random: number): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(failures, 30));
  return Math.round(base * (0.5 + random * 0.5));
}
