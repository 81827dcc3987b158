// Closed-loop load generator: `concurrency` tasks in flight, a new one sent as
// one ends (with --batch, a batch of them as soon as that many have ended),
// over one or more pipelined connections, on the client's callback path (no
// promise per task: task-sender.ts). Retryable refusals and lost connections
// are retried with backoff under the same idempotency key, so a retry never
// duplicates a task.

import type { HostPort } from "../net/endpoints.ts";
import type { ClientSecurity } from "../net/net-flags.ts";
import { ConnectionPool } from "./connection-pool.ts";
import { TaskSender } from "./task-sender.ts";
import type { LatencySummary } from "./latency-histogram.ts";
import { progressLine, RunTally } from "./run-tally.ts";
import { makeWorkload, type WorkloadOptions } from "./workloads.ts";

export type { LatencySummary } from "./latency-histogram.ts";

export interface LoadOptions {
  addresses: HostPort[];
  concurrency: number;
  tasks: number;
  connections: number;
  workload: WorkloadOptions;
  /** Attempts per task at the client (refusals, lost connections) before it counts as failed. */
  submitAttemptsMax: number;
  /** Hard bound on the whole run. */
  deadlineMs: number;
  /** Token and TLS for every connection. */
  security: ClientSecurity;
  idempotencyPrefix: string;
  /** Ctrl-C: stop sending, report what ended so far. */
  stop?: StopRequest;
  /** A server connection was lost mid-run (its tasks are retried elsewhere or after a redial). */
  onLost?: (address: string, reason: string) => void;
  /** Called every PROGRESS_MS with the live line (a terminal shows it; a pipe or --json does not ask). */
  onProgress?: (line: string) => void;
  /** Tasks per SUBMIT_BATCH message (1: a SUBMIT each). */
  batch: number;
  /** A task ends at its acknowledgement, not when it has run (ingest: no worker needed). */
  submitOnly: boolean;
}

/** How often a run's live progress line is redrawn. */
export const PROGRESS_MS = 500;

/** A request to end a run early: `requested` once `wait` resolves. */
export interface StopRequest {
  requested: boolean;
  wait: Promise<void>;
}

/** Resolves on the first SIGINT (Ctrl-C), which then no longer ends the process at once. */
export function stopOnInterrupt(): StopRequest {
  const stop: StopRequest = { requested: false, wait: Promise.resolve() };
  stop.wait = new Promise<void>((resolve) => process.once("SIGINT", () => {
    stop.requested = true;
    resolve();
  }));
  return stop;
}

export interface LoadReport {
  workload: string;
  tasks: number;
  concurrency: number;
  completed: number;
  failed: number;
  retried: number;
  durationMs: number;
  throughput: number;
  latencyMs: LatencySummary;
  errors: Record<string, number>;
  timedOut: boolean;
  /** The client's own CPU per task that ended (µs, user + system): what generating the load cost. */
  clientCpuUsPerTask?: number;
  /** Stopped by Ctrl-C: tasks not ended by then were not waited for (neither completed nor failed). */
  interrupted?: boolean;
  wordCount?: number;
  wordCountExpected?: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const workload = makeWorkload(options.workload, options.tasks);
  const tally = new RunTally(workload.expectedWords);
  const pool = new ConnectionPool(options.addresses, options.connections, options.security, options.onLost);
  const batch = Math.min(options.batch, options.concurrency);
  // When each task was first sent (ms since the run began): its latency runs from there, retries
  // included. 8 bytes a task (80 MB for -n 10,000,000): what replaces a promise and closure per task.
  const sentAtMs = new Float64Array(options.tasks);
  let inFlight = 0;
  let ended = 0;
  let timedOut = false;
  let allEnded: () => void = () => {};
  const rule = { submitAttemptsMax: options.submitAttemptsMax, deadline: Infinity };
  const sender = new TaskSender({
    pool, connections: options.connections, tasks: options.tasks, workload, idempotencyPrefix: options.idempotencyPrefix,
    asBatch: options.batch > 1, waitForEnd: !options.submitOnly, counters: tally.counters,
    rule,
    ended: (i, ok, ran, output) => {
      inFlight--;
      ended++;
      tally.ended(ok, ran, output, ok ? Math.max(1, Math.round((performance.now() - started - sentAtMs[i]!) * 1000)) : 0);
      if (ended === options.tasks) allEnded();
      else refill();
    },
  });
  await sender.connect();
  const started = performance.now();
  tally.started();
  const deadline = started + options.deadlineMs;
  rule.deadline = deadline; // no task is retried past it

  // Sends while a whole batch fits in the window (or the run's last, smaller one).
  const refill = () => {
    if (options.stop?.requested === true) return;
    const nowMs = performance.now();
    if (nowMs > deadline) {
      timedOut = true;
      return;
    }
    while (sender.remaining > 0 && options.concurrency - inFlight >= Math.min(batch, sender.remaining)) {
      const first = options.tasks - sender.remaining;
      const n = sender.sendNext(Math.min(batch, options.concurrency - inFlight));
      sentAtMs.fill(nowMs - started, first, first + n);
      inFlight += n;
    }
  };

  const progress = options.onProgress === undefined ? undefined
    : setInterval(() => options.onProgress!(progressLine(tally.progress(), options.tasks, performance.now() - started)), PROGRESS_MS);
  // Tasks still in flight at the deadline are abandoned and count as failed.
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  const deadlineReached = new Promise<void>((resolve) => (deadlineTimer = setTimeout(() => {
    timedOut = true;
    resolve();
  }, options.deadlineMs)));
  const finished = new Promise<void>((resolve) => (allEnded = resolve));
  refill();
  await Promise.race([finished, deadlineReached, ...(options.stop ? [options.stop.wait] : [])]);
  clearTimeout(deadlineTimer);
  clearInterval(progress);
  const durationMs = performance.now() - started;
  sender.close();
  return tally.report({ workload: options.workload.name, tasks: options.tasks, concurrency: options.concurrency, durationMs, timedOut, interrupted: options.stop?.requested });
}
