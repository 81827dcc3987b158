// Closed-loop load generator: `concurrency` loops, each submitting a task and
// waiting for its outcome before the next, over one or more pipelined
// connections. Retryable refusals and lost connections are retried with
// backoff under the same idempotency key, so a retry never duplicates a task.

import type { HostPort } from "../net/endpoints.ts";
import type { ClientSecurity } from "../net/net-flags.ts";
import { ConnectionPool, runWithRetries } from "./connection-pool.ts";
import type { LatencySummary } from "./latency-histogram.ts";
import { progressLine, RunTally, taskKey } from "./run-tally.ts";
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
  let next = 0;
  let timedOut = false;
  const started = performance.now();
  tally.started();
  const deadline = started + options.deadlineMs;
  const rule = { submitAttemptsMax: options.submitAttemptsMax, deadline };

  const loop = async (slot: number) => {
    for (;;) {
      if (options.stop?.requested === true) return;
      if (performance.now() > deadline) {
        timedOut = true;
        return;
      }
      const i = next++;
      if (i >= options.tasks) return;
      const t0 = performance.now();
      const outcome = await runWithRetries(pool, slot, workload.task(i), taskKey(options.idempotencyPrefix, i), rule, tally.counters);
      tally.record(outcome, () => Math.max(1, Math.round((performance.now() - t0) * 1000)));
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
  await Promise.race([Promise.all(Array.from({ length: options.concurrency }, (_, slot) => loop(slot))), deadlineReached, ...(options.stop ? [options.stop.wait] : [])]);
  clearTimeout(deadlineTimer);
  clearInterval(progress);
  const durationMs = performance.now() - started;
  pool.close();
  return tally.report({ workload: options.workload.name, tasks: options.tasks, concurrency: options.concurrency, durationMs, timedOut, interrupted: options.stop?.requested });
}
