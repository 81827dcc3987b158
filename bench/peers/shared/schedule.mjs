// The open loop's schedule, the same arithmetic as our client's
// (src/client/open-loop-schedule.ts, unit-tested there): task i is due i / rate
// seconds after the start, and its latency runs from that intended time.

export function planOpenLoop(rate, durationS, tasksMax) {
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`rate must be a positive number, got ${rate}`);
  if (!(durationS > 0) || !Number.isFinite(durationS)) throw new RangeError(`duration must be positive, got ${durationS}`);
  const scheduled = Math.max(1, Math.round(rate * durationS));
  return { rate, tasks: tasksMax === undefined ? scheduled : Math.min(scheduled, tasksMax) };
}

export const intendedSendMs = (plan, i) => (i * 1000) / plan.rate;

export function dueCount(plan, elapsedMs) {
  if (elapsedMs < 0) return 0;
  let k = Math.min(plan.tasks - 1, Math.floor((elapsedMs * plan.rate) / 1000));
  while (k + 1 < plan.tasks && intendedSendMs(plan, k + 1) <= elapsedMs) k++;
  while (k >= 0 && intendedSendMs(plan, k) > elapsedMs) k--;
  return k + 1;
}

export function waitBeforeMs(plan, next, elapsedMs) {
  if (next >= plan.tasks) return undefined;
  return Math.max(0, intendedSendMs(plan, next) - elapsedMs);
}
