// Closed-loop load generator: `concurrency` loops, each submitting a task and
// waiting for its outcome before the next, over one or more pipelined
// connections. Retryable refusals and lost connections are retried with
// backoff under the same idempotency key, so a retry never duplicates a task.

import type { ClientSecurity } from "../net/net-flags.ts";
import { decode } from "@msgpack/msgpack";
import type { HostPort } from "../net/endpoints.ts";
import type { TaskOutcome } from "../sdk/client.ts";
import { ConnectionPool, runWithRetries, type AttemptCounters } from "./connection-pool.ts";
import { newLatencyHistogram, summarizeLatency, type LatencySummary } from "./latency-histogram.ts";
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
  wordCount?: number;
  wordCountExpected?: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const workload = makeWorkload(options.workload, options.tasks);
  const histogram = newLatencyHistogram();
  const pool = new ConnectionPool(options.addresses, options.connections, options.security);
  const counters: AttemptCounters = { retried: 0, errors: {} };
  let next = 0;
  let completed = 0;
  let failed = 0;
  let words = 0;
  let timedOut = false;
  const started = performance.now();
  const deadline = started + options.deadlineMs;

  const runOne = (slot: number, i: number): Promise<TaskOutcome | undefined> => {
    const idempotencyKey = options.idempotencyPrefix === "" ? "" : `${options.idempotencyPrefix}${i}`;
    return runWithRetries(pool, slot, workload.task(i), idempotencyKey, { submitAttemptsMax: options.submitAttemptsMax, deadline }, counters);
  };

  const loop = async (slot: number) => {
    for (;;) {
      if (performance.now() > deadline) {
        timedOut = true;
        return;
      }
      const i = next++;
      if (i >= options.tasks) return;
      const t0 = performance.now();
      const outcome = await runOne(slot, i);
      if (outcome === undefined || !outcome.ok) {
        failed++;
        if (outcome?.error) counters.errors.E_TASK_FAILED = (counters.errors.E_TASK_FAILED ?? 0) + 1;
        continue;
      }
      histogram.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      completed++;
      if (workload.expectedWords !== undefined) words += decode(outcome.output) as number;
    }
  };

  // Tasks still in flight at the deadline are abandoned and count as failed.
  let deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  const deadlineReached = new Promise<void>((resolve) => (deadlineTimer = setTimeout(() => {
    timedOut = true;
    resolve();
  }, options.deadlineMs)));
  await Promise.race([Promise.all(Array.from({ length: options.concurrency }, (_, slot) => loop(slot))), deadlineReached]);
  clearTimeout(deadlineTimer);
  if (timedOut) failed = options.tasks - completed;
  const durationMs = performance.now() - started;
  pool.close();
  const report: LoadReport = {
    workload: options.workload.name,
    tasks: options.tasks,
    concurrency: options.concurrency,
    completed,
    failed,
    retried: counters.retried,
    durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000),
    latencyMs: summarizeLatency(histogram),
    errors: counters.errors,
    timedOut,
  };
  if (workload.expectedWords !== undefined) {
    report.wordCount = words;
    report.wordCountExpected = workload.expectedWords;
  }
  histogram.destroy();
  return report;
}
