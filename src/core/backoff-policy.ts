// Retry delays. Jitter spreads retries of tasks that failed together, but it
// must be the same on every replica: it comes from a hash of the task id and
// attempt number, not from a random source.

import type { Backoff } from "./task.ts";

/** Delay before retrying after failed attempt number `attempt` (1-based). */
export function retryDelayMs(backoff: Backoff, taskId: number, attempt: number): number {
  if (backoff.delayMs <= 0) return 0;
  if (backoff.type === "fixed") return Math.min(backoff.delayMs, backoff.maxDelayMs);
  const base = Math.min(backoff.maxDelayMs, backoff.delayMs * 2 ** Math.min(attempt - 1, 40));
  // "Equal jitter": half the delay is fixed, half is spread, so retries neither bunch up nor come too soon.
  return Math.round(base / 2 + (base / 2) * unitHash(taskId, attempt));
}

/** A number in [0, 1) that depends only on its inputs. */
function unitHash(taskId: number, attempt: number): number {
  let h = 0x811c9dc5;
  for (const x of [taskId % 0x100000000, Math.floor(taskId / 0x100000000), attempt]) {
    for (let i = 0; i < 4; i++) {
      h ^= (x >>> (i * 8)) & 0xff;
      h = Math.imul(h, 0x01000193);
    }
  }
  return (h >>> 0) / 0x100000000;
}
