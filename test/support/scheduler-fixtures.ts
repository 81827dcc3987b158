// Building blocks for scheduler tests: options with small, readable numbers, a
// submit request with defaults, a bare task record, and readers of the effects.

import { NO_BACKOFF, Scheduler, type SchedulerOptions, type SubmitRequest, type WorkflowNodeRequest } from "../../src/core/scheduler.ts";
import type { Task } from "../../src/core/task.ts";

export const TEST_OPTIONS: SchedulerOptions = {
  shard: 3,
  queueMax: 1000,
  retainedMax: 1000,
  retainedMs: 3_600_000,
  dlqMax: 1000,
  leaseMs: 1000,
  workerTimeoutMs: 3000,
  defaultTimeoutMs: 10_000,
  defaultMaxAttempts: 3,
  agingMs: 1000,
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

/** A workflow node with defaults; `dependsOn` names other nodes ({node}) or existing tasks ({taskId}). */
export function node(fields: Partial<WorkflowNodeRequest> = {}): WorkflowNodeRequest {
  return {
    type: "noop", payload: new Uint8Array(0), priority: 0, maxAttempts: 0, timeoutMs: 0, idempotencyKey: "", dependsOn: [], ...fields,
  };
}

/** Submits and returns the new task id; fails the test if the submission was refused. */
export function submitOk(s: Scheduler, now: number, fields: Partial<SubmitRequest> = {}): number {
  const outcome = s.submit(request(fields), now);
  if (!outcome.ok) throw new Error(`submit refused: ${outcome.code} ${outcome.message}`);
  return outcome.taskId;
}

/** A task record as the scheduler would hold it just before it is queued (push() makes it queued), for tests of the ready queue alone. */
export function makeTask(fields: Partial<Task> & { id: number }): Task {
  return {
    type: "t", payload: new Uint8Array(0), priority: 0, maxAttempts: 1, timeoutMs: 1, idempotencyKey: "", submittedAt: 0,
    deadline: 0, backoff: NO_BACKOFF, tags: [], dependsOn: [], state: "waiting", waitingOn: 0, dependants: [], runAt: 0, band: 0,
    attempt: 0, attemptBase: 0, workerId: 0, leasedAt: 0, leaseExpiresAt: 0, watchers: [], output: undefined, errors: [], finishedAt: 0, foreignOutputs: [],
    ...fields,
  };
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

/** Dispatches at `now` and returns the ids leased to `workerId` (taking the effects). */
export function leaseNow(s: Scheduler, now: number, workerId: number): number[] {
  s.dispatch(now);
  return assigned(s).get(workerId) ?? [];
}

/** Completes a leased task with its current attempt (its worker and attempt read from the task). */
export function complete(s: Scheduler, id: number, now: number, output: Uint8Array = new Uint8Array(0)): void {
  const task = s.task(id);
  if (task === undefined || task.state !== "leased") throw new Error(`task ${id} is not leased (${task?.state})`);
  s.result(task.workerId, id, task.attempt, OK, output, now);
}

/** Fails the current attempt of a leased task with `error`. */
export function failAttempt(s: Scheduler, id: number, now: number, error: string): void {
  const task = s.task(id);
  if (task === undefined || task.state !== "leased") throw new Error(`task ${id} is not leased (${task?.state})`);
  s.result(task.workerId, id, task.attempt, FAIL, utf8.encode(error), now);
}
