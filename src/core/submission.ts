// A submission checked and made into a task (Scheduler.submit and workflows):
// what is refused and why, and every field a new task starts with.

import { assert } from "./assert.ts";
import { PRIORITY_LEVELS } from "./ready-queue.ts";
import type { SchedulerTables } from "./scheduler-tables.ts";
import { NO_BACKOFF, type Refusal, type SchedulerOptions, type SubmitRequest } from "./scheduler-types.ts";
import { emptyList, makeTaskId, shardOfTask, type Task } from "./task.ts";

/** Shared empty lists for the common task with no tags and no parents (never mutated). */
const NO_STRINGS: readonly string[] = Object.freeze([]);
const NO_IDS: readonly number[] = Object.freeze([]);

/** Why `req` (with `adding` tasks in all) cannot be accepted, or undefined. Counts a refusal for a full queue. */
export function validateSubmission(held: SchedulerTables, options: SchedulerOptions, req: SubmitRequest, adding: number): Refusal | undefined {
  const bad = (message: string): Refusal => ({ ok: false, code: "E_BAD_REQUEST", message });
  if (req.type.length === 0) return bad("task type must not be empty");
  if (!Number.isInteger(req.priority) || req.priority < 0 || req.priority >= PRIORITY_LEVELS) {
    return bad(`priority must be an integer from 0 to ${PRIORITY_LEVELS - 1}`);
  }
  // A NaN or infinite runAt never comes due (the task would sit in the delayed heap for good); a NaN deadline never passes.
  if (!isTime(req.deadline)) return bad(`deadline must be a finite, non-negative time in ms (0: none), not ${req.deadline}`);
  if (!isTime(req.runAt)) return bad(`runAt must be a finite, non-negative time in ms (0: now), not ${req.runAt}`);
  const b = req.backoff;
  if (b !== undefined && (!(b.delayMs >= 0) || !(b.maxDelayMs >= 0) || (b.type !== "fixed" && b.type !== "exponential"))) {
    return bad("backoff needs type exponential|fixed and non-negative delayMs, maxDelayMs");
  }
  for (const parent of req.dependsOn ?? []) {
    // Not an id (NaN, 1.5, -1) would count as a parent on another shard, which nobody ever reports: the task would wait for good.
    if (!Number.isSafeInteger(parent) || parent < 0) return bad(`dependsOn must hold task ids (non-negative integers), not ${parent}`);
    // A parent on another shard is the router's to check; here it is waited on (see place()).
    if (!held.tasks.has(parent) && shardOfTask(parent) === options.shard) {
      return { ok: false, code: "E_UNKNOWN_TASK", message: `dependency ${parent} is not a task of shard ${options.shard} (never submitted, evicted, or on another shard)` };
    }
  }
  if (held.unfinished + adding > options.queueMax) {
    held.counters.rejectedQueueFull++;
    return { ok: false, code: "E_QUEUE_FULL", message: `shard ${options.shard} holds ${held.unfinished} unfinished tasks; its limit is ${options.queueMax}` };
  }
  return undefined;
}

/** A new task for `req`, held and counted (its state is "waiting" until Lifecycle.place). */
export function createTask(held: SchedulerTables, options: SchedulerOptions, req: SubmitRequest, dependsOn: readonly number[], now: number): Task {
  const id = makeTaskId(options.shard, held.nextSeq++);
  // Ids only move forward: one handed out again would replace a task some client holds the id of.
  assert(!held.tasks.has(id), "a new task's id is not held already", "task", id, "nextSeq", held.nextSeq - 1);
  const task: Task = {
    id,
    type: req.type,
    payload: req.payload,
    priority: req.priority,
    maxAttempts: req.maxAttempts > 0 ? req.maxAttempts : options.defaultMaxAttempts,
    timeoutMs: req.timeoutMs > 0 ? req.timeoutMs : options.defaultTimeoutMs,
    idempotencyKey: req.idempotencyKey,
    submittedAt: now,
    deadline: req.deadline ?? 0,
    backoff: req.backoff ?? NO_BACKOFF,
    tags: req.tags ?? NO_STRINGS,
    dependsOn: dependsOn.length === 0 ? NO_IDS : [...dependsOn],
    state: "waiting",
    waitingOn: 0,
    dependants: emptyList(),
    runAt: req.runAt ?? 0,
    band: 0,
    attempt: 0,
    attemptBase: 0,
    workerId: 0,
    leasedAt: 0,
    leaseExpiresAt: 0,
    watchers: emptyList(),
    output: undefined,
    errors: emptyList(),
    finishedAt: 0,
    foreignOutputs: emptyList(),
  };
  held.tasks.add(task);
  held.counters.submitted++;
  held.unfinished++;
  return task;
}

function isTime(ms: number | undefined): boolean {
  return ms === undefined || (Number.isFinite(ms) && ms >= 0);
}
