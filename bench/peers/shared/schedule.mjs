// The open loop's schedule, the same arithmetic as our client's
// (src/client/open-loop-schedule.ts, unit-tested there): task i is due i / rate
// seconds after the start, and its latency runs from that intended time.

import { summarize } from "./peer-support.mjs";

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

/**
 * Sends an open loop's tasks as they fall due: `send(first, count)` gets what is
 * due together (our client writes what is due in one frame), until every task
 * is sent or `deadline` (performance.now()) passes. `started` is the schedule's
 * time zero. Resolves with how many were sent and the report fields our client
 * gives about its sending. `latencies` (OpenLoopLatencies) gets each task's real
 * send time, for its latency from sent, as our client reports.
 */
export async function sendOnSchedule(plan, started, deadline, send, latencies) {
  let sent = 0, sendLagMsMax = 0, lastSendMs = 0;
  while (sent < plan.tasks && performance.now() < deadline) {
    const nowMs = performance.now() - started;
    const due = dueCount(plan, nowMs);
    if (due > sent) {
      sendLagMsMax = Math.max(sendLagMsMax, nowMs - intendedSendMs(plan, sent));
      lastSendMs = nowMs;
      latencies?.sentAtMs.fill(nowMs, sent, due);
      send(sent, due - sent);
      sent = due;
    }
    if (sent < plan.tasks) await new Promise((r) => setTimeout(r, waitBeforeMs(plan, sent, performance.now() - started)));
  }
  return {
    sent,
    fields: {
      mode: "open", offeredRate: plan.rate,
      sentRate: sent === 0 ? 0 : Math.round((sent / (lastSendMs + 1000 / plan.rate)) * 1000), sendLagMsMax: Math.round(sendLagMsMax * 1000) / 1000,
    },
  };
}

/**
 * An open loop's latencies, both as our client reports them: from each job's
 * intended send time (the headline: a client that falls behind shows), and from
 * its real send (the load generator's own lateness left out).
 */
export class OpenLoopLatencies {
  constructor(plan, started) {
    this.plan = plan;
    this.started = started;
    /** Filled by sendOnSchedule: when each job went out, ms after `started`. */
    this.sentAtMs = new Float64Array(plan.tasks);
    this.fromIntended = [];
    this.fromSent = [];
  }

  /** Job i completed at `at` (performance.now()). */
  completed(i, at) {
    const doneMs = at - this.started;
    this.fromIntended.push(doneMs - intendedSendMs(this.plan, i));
    this.fromSent.push(doneMs - this.sentAtMs[i]);
  }

  get count() {
    return this.fromIntended.length;
  }

  /** The report's two latency fields. */
  fields() {
    return { latencyMs: summarize(this.fromIntended), latencyFromSentMs: summarize(this.fromSent) };
  }
}
