// The arithmetic of an open-loop run, kept pure (no clock, no IO) so it can be
// tested exactly: task i is meant to be sent at i / rate seconds after the start,
// whatever happened to the tasks before it, and its latency is measured from
// that intended time, so a client that falls behind charges its lag to latency
// (no coordinated omission).

export interface OpenLoopPlan {
  /** Tasks per second offered. */
  rate: number;
  /** Tasks in the run: rate x duration, capped by an explicit task count. */
  tasks: number;
}

/** How many tasks a run of `durationS` at `rate` sends, at most `tasksMax` when one is given. */
export function planOpenLoop(rate: number, durationS: number, tasksMax?: number): OpenLoopPlan {
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number, got ${rate}`);
  if (!(durationS > 0) || !Number.isFinite(durationS)) throw new RangeError(`duration must be a positive number of seconds, got ${durationS}`);
  // Rounded, not floored: 0.29 s at 100/s is 29 tasks even though 100 * 0.29 is 28.999999999999996.
  const scheduled = Math.max(1, Math.round(rate * durationS));
  return { rate, tasks: tasksMax === undefined ? scheduled : Math.min(scheduled, tasksMax) };
}

/** When task i is meant to be sent, in ms after the start of the run. */
export function intendedSendMs(plan: OpenLoopPlan, i: number): number {
  return (i * 1000) / plan.rate;
}

/**
 * How many tasks are due `elapsedMs` after the start: the number of i in
 * [0, tasks) whose intended time is at or before elapsedMs. Task 0 is due at 0.
 * Exact at the boundaries (checked against intendedSendMs itself, not a
 * separately rounded division), so a task is never sent early or skipped.
 */
export function dueCount(plan: OpenLoopPlan, elapsedMs: number): number {
  if (elapsedMs < 0) return 0;
  let k = Math.min(plan.tasks - 1, Math.floor((elapsedMs * plan.rate) / 1000));
  while (k + 1 < plan.tasks && intendedSendMs(plan, k + 1) <= elapsedMs) k++;
  while (k >= 0 && intendedSendMs(plan, k) > elapsedMs) k--;
  return k + 1;
}

/** How long to wait before task `next` is due (0 when it already is); undefined when every task is sent. */
export function waitBeforeMs(plan: OpenLoopPlan, next: number, elapsedMs: number): number | undefined {
  if (next >= plan.tasks) return undefined;
  return Math.max(0, intendedSendMs(plan, next) - elapsedMs);
}

/**
 * A task's latency in whole microseconds (the histogram's unit, at least 1):
 * from its intended send time to its completion, both in ms after the start.
 */
export function latencyUs(plan: OpenLoopPlan, i: number, doneElapsedMs: number): number {
  return Math.max(1, Math.round((doneElapsedMs - intendedSendMs(plan, i)) * 1000));
}
