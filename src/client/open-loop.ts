// Open-loop load generator: tasks go out on a fixed schedule (`rate` per
// second) whatever the cluster does, and each latency runs from the task's
// intended send time to its completion. A closed loop waits for a slow answer
// before asking again and so never measures the queue it would have built (the
// "coordinated omission" of closed-loop benchmarks); here a stall, or a client
// that falls behind its own schedule, shows up in the latencies. The latency
// from the moment each task really went out is kept beside it: the difference is
// the client's own lateness (its timers fire ~1 ms apart at best), which a reader
// should not charge to the cluster.

import { ConnectionPool } from "./connection-pool.ts";
import type { LoadOptions, LoadReport } from "./load.ts";
import { newLatencyHistogram, summarizeLatency, type LatencySummary } from "./latency-histogram.ts";
import { RunTally } from "./run-tally.ts";
import { TaskSender } from "./task-sender.ts";
import { dueCount, intendedSendMs, latencyUs, planOpenLoop, waitBeforeMs } from "./open-loop-schedule.ts";
import { makeWorkload } from "./workloads.ts";

export interface OpenLoopOptions extends Omit<LoadOptions, "concurrency" | "tasks"> {
  /** Tasks per second offered. */
  rate: number;
  /** How long the schedule runs. */
  durationS: number;
  /** Caps the tasks of the run (rate x duration) when given. */
  tasksMax?: number;
  /** Tasks in flight at most; past it the client stops sending, falls behind, and the lag counts as latency. */
  inFlightMax: number;
}

export interface OpenLoopReport extends LoadReport {
  mode: "open";
  /** Tasks per second asked for. */
  offeredRate: number;
  /** Tasks per second actually sent over the schedule's window (below offeredRate when the client fell behind). */
  sentRate: number;
  /** How late, behind its intended time, the latest task was sent. */
  sendLagMsMax: number;
  /** Latency from the moment each task was really sent: `latencyMs` less the client's own lateness. */
  latencyFromSentMs: LatencySummary;
  /** Most tasks in flight at once (`concurrency` holds the cap). */
  inFlightPeak: number;
  /** The unmeasured run before this one (--warmup-s), when there was one. */
  warmup?: { seconds: number; tasks: number; completed: number; failed: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopReport> {
  const plan = planOpenLoop(options.rate, options.durationS, options.tasksMax);
  const workload = makeWorkload(options.workload, plan.tasks);
  const tally = new RunTally(workload.expectedWords);
  const pool = new ConnectionPool(options.addresses, options.connections, options.security, options.onLost);
  void options.stop?.wait.then(() => wake?.());
  let sent = 0;
  let inFlight = 0;
  let inFlightPeak = 0;
  let sendLagMsMax = 0;
  /** When each task went out (ms after the start), for its latency from sent. */
  const sentAtMs = new Float64Array(plan.tasks);
  const fromSent = newLatencyHistogram();
  let lastSendMs = 0;
  let timedOut = false;
  // Woken when a task ends: the sender waiting for a free slot, and the final drain.
  let wake: (() => void) | undefined;
  let started = 0;
  const rule = { submitAttemptsMax: options.submitAttemptsMax, deadline: Infinity };
  const sender = new TaskSender({
    pool, connections: options.connections, tasks: plan.tasks, workload, idempotencyPrefix: options.idempotencyPrefix,
    asBatch: options.batch > 1, waitForEnd: !options.submitOnly, counters: tally.counters, rule,
    ended: (i, ok, ran, output) => {
      inFlight--;
      const doneMs = performance.now() - started;
      tally.ended(ok, ran, output, ok ? latencyUs(plan, i, doneMs) : 0);
      if (ok) fromSent.recordValue(Math.max(1, Math.round((doneMs - sentAtMs[i]!) * 1000)));
      wake?.();
    },
  });
  // Dial before the clock starts: the handshake is not part of any task's latency.
  await sender.connect();
  started = performance.now();
  tally.started();
  const deadline = started + options.deadlineMs;
  rule.deadline = deadline;

  // Tasks sent..sent+n-1, due now: one group (a SUBMIT_BATCH with --batch).
  const send = (n: number, nowMs: number) => {
    sendLagMsMax = Math.max(sendLagMsMax, nowMs - intendedSendMs(plan, sent));
    lastSendMs = nowMs;
    const k = sender.sendNext(n);
    sentAtMs.fill(nowMs, sent, sent + k);
    sent += k;
    inFlight += k;
    inFlightPeak = Math.max(inFlightPeak, inFlight);
  };

  const waitForWake = (ms: number) => new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      wake = undefined;
      resolve();
    }
    wake = done;
  });

  // Send what is due, then sleep until the next task is (or a slot frees up).
  // Timers fire at ~1 ms granularity: at high rates each wake-up sends a batch.
  while (sent < plan.tasks && options.stop?.requested !== true) {
    const nowMs = performance.now() - started;
    if (nowMs > options.deadlineMs) {
      timedOut = true;
      break;
    }
    const due = dueCount(plan, nowMs);
    while (sent < due && inFlight < options.inFlightMax) send(Math.min(due - sent, options.inFlightMax - inFlight, options.batch), nowMs);
    if (sent >= plan.tasks) break;
    if (inFlight >= options.inFlightMax) await waitForWake(options.deadlineMs - nowMs);
    else await sleep(waitBeforeMs(plan, sent, performance.now() - started) ?? 0);
  }
  // Drain: tasks still in flight at the deadline are abandoned and count as failed.
  while (inFlight > 0 && options.stop?.requested !== true) {
    const left = deadline - performance.now();
    if (left <= 0) {
      timedOut = true;
      break;
    }
    await waitForWake(left);
  }
  const durationMs = performance.now() - started;
  sender.close();
  return {
    ...tally.report({ workload: options.workload.name, tasks: plan.tasks, concurrency: options.inFlightMax, durationMs, timedOut, interrupted: options.stop?.requested }),
    mode: "open",
    offeredRate: plan.rate,
    // The window of n tasks at rate r is n / r: the last send time plus one interval.
    sentRate: sent === 0 ? 0 : Math.round((sent / (lastSendMs + 1000 / plan.rate)) * 1000),
    sendLagMsMax: Math.round(sendLagMsMax * 1000) / 1000,
    latencyFromSentMs: summarizeLatency(fromSent),
    inFlightPeak,
  };
}

/** The lines the open loop adds to the closed loop's table. */
export function openLoopLines(r: OpenLoopReport): string[] {
  const f = r.latencyFromSentMs;
  return [
    `offered       ${r.offeredRate} tasks/s; sent at ${r.sentRate} tasks/s, at most ${r.sendLagMsMax} ms behind schedule`,
    `from sent ms  p50 ${f.p50}  p99 ${f.p99}  p99.9 ${f.p999}  max ${f.max}  (latency less this client's own lateness)`,
    `in flight     at most ${r.inFlightPeak} (cap ${r.concurrency})`,
    ...(r.warmup === undefined ? [] : [`warm-up       ${r.warmup.seconds} s before, unmeasured: ${r.warmup.completed} of ${r.warmup.tasks} tasks completed, ${r.warmup.failed} failed`]),
  ];
}
