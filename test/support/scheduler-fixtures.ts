// Building blocks for scheduler tests: options with small, readable numbers and
// a submit request with defaults.

import { Scheduler, type SchedulerOptions, type SubmitRequest } from "../../src/core/scheduler.ts";

export const TEST_OPTIONS: SchedulerOptions = {
  shard: 3,
  queueMax: 1000,
  retainedMax: 1000,
  leaseMs: 1000,
  workerTimeoutMs: 3000,
  defaultTimeoutMs: 10_000,
  defaultMaxAttempts: 3,
};

export function makeScheduler(options: Partial<SchedulerOptions> = {}): Scheduler {
  return new Scheduler({ ...TEST_OPTIONS, ...options });
}

export function request(fields: Partial<SubmitRequest> = {}): SubmitRequest {
  return {
    type: "noop", payload: new Uint8Array(0), priority: 0, maxAttempts: 0, timeoutMs: 0,
    idempotencyKey: "", watcher: 0, watchRequestId: 0, ...fields,
  };
}

/** Submits and returns the new task id; fails the test if the submission was refused. */
export function submitOk(s: Scheduler, now: number, fields: Partial<SubmitRequest> = {}): number {
  const outcome = s.submit(request(fields), now);
  if (!outcome.ok) throw new Error(`submit refused: ${outcome.code} ${outcome.message}`);
  return outcome.taskId;
}

export const utf8 = new TextEncoder();

export const OK = true;
export const FAIL = false;

/** Ids assigned to each worker since the last takeReady(). */
export function assigned(s: Scheduler): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (const [worker, tasks] of s.takeReady().assignments) out.set(worker, tasks.map((t) => t.id));
  return out;
}

export function finishedIds(s: Scheduler): number[] {
  return s.takeReady().finished.map((t) => t.id);
}

export function state(s: Scheduler, id: number): string | undefined {
  return s.task(id)?.state;
}
