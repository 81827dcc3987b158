// Closed-loop load generator: `concurrency` loops, each submitting a task and
// waiting for its outcome before the next, over one or more pipelined
// connections. Retryable refusals and lost connections are retried with
// backoff under the same idempotency key, so a retry never duplicates a task.

import { decode } from "@msgpack/msgpack";
import * as hdr from "hdr-histogram-js";
import { backoffDelayMs } from "../net/backoff.ts";
import type { HostPort } from "../net/endpoints.ts";
import { isRetryable } from "../protocol/errors.ts";
import { SchedulerClient, TaskError, type TaskOutcome } from "../sdk/client.ts";
import { makeWorkload, type WorkloadOptions } from "./workloads.ts";

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
  token?: string;
  idempotencyPrefix: string;
}

export interface LatencySummary {
  min: number;
  avg: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Keeps one live connection per slot, redialing (once, shared) after a loss. */
class ConnectionPool {
  private readonly clients: (Promise<SchedulerClient> | undefined)[];
  private addressIndex = 0;

  constructor(
    private readonly addresses: HostPort[],
    size: number,
    private readonly token: string | undefined,
  ) {
    this.clients = new Array(size);
  }

  get(slot: number): Promise<SchedulerClient> {
    const i = slot % this.clients.length;
    const existing = this.clients[i];
    if (existing !== undefined) {
      return existing.then((c) => (c.closed ? this.redial(i, existing) : c));
    }
    return this.redial(i, undefined);
  }

  private redial(i: number, stale: Promise<SchedulerClient> | undefined): Promise<SchedulerClient> {
    if (this.clients[i] !== stale) return this.get(i);
    const address = this.addresses[this.addressIndex++ % this.addresses.length]!;
    const dialing = SchedulerClient.connect(address, { token: this.token });
    this.clients[i] = dialing;
    dialing.catch(() => {
      if (this.clients[i] === dialing) this.clients[i] = undefined;
    });
    return dialing;
  }

  close(): void {
    for (const c of this.clients) void c?.then((client) => client.close(), () => {});
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const workload = makeWorkload(options.workload, options.tasks);
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const pool = new ConnectionPool(options.addresses, options.connections, options.token);
  const errors: Record<string, number> = {};
  let next = 0;
  let completed = 0;
  let failed = 0;
  let retried = 0;
  let words = 0;
  let timedOut = false;
  const started = performance.now();
  const deadline = started + options.deadlineMs;

  const runOne = async (slot: number, i: number): Promise<TaskOutcome | undefined> => {
    const spec = workload.task(i);
    const idempotencyKey = options.idempotencyPrefix === "" ? "" : `${options.idempotencyPrefix}${i}`;
    for (let attempt = 0; ; attempt++) {
      try {
        const client = await pool.get(slot);
        return await client.run(spec.type, spec.payload, { idempotencyKey });
      } catch (err) {
        const code = err instanceof TaskError ? err.code : "E_UNAVAILABLE";
        errors[code] = (errors[code] ?? 0) + 1;
        const retryable = !(err instanceof TaskError) || isRetryable(code);
        if (!retryable || attempt + 1 >= options.submitAttemptsMax || performance.now() > deadline) return undefined;
        retried++;
        await sleep(backoffDelayMs(attempt, 10, 1000, Math.random()));
      }
    }
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
        if (outcome?.error) errors.E_TASK_FAILED = (errors.E_TASK_FAILED ?? 0) + 1;
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
  const ms = (us: number) => Math.round(us) / 1000;
  const report: LoadReport = {
    workload: options.workload.name,
    tasks: options.tasks,
    concurrency: options.concurrency,
    completed,
    failed,
    retried,
    durationMs: Math.round(durationMs),
    throughput: Math.round((completed / durationMs) * 1000),
    latencyMs: completed === 0
      ? { min: 0, avg: 0, p50: 0, p95: 0, p99: 0, max: 0 }
      : {
          min: ms(histogram.minNonZeroValue),
          avg: ms(histogram.mean),
          p50: ms(histogram.getValueAtPercentile(50)),
          p95: ms(histogram.getValueAtPercentile(95)),
          p99: ms(histogram.getValueAtPercentile(99)),
          max: ms(histogram.maxValue),
        },
    errors,
    timedOut,
  };
  if (workload.expectedWords !== undefined) {
    report.wordCount = words;
    report.wordCountExpected = workload.expectedWords;
  }
  histogram.destroy();
  return report;
}
