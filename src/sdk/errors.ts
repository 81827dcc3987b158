// Errors the SDK hands to user code, each with a typed code: a refused request
// (SchedulerError) or a task that ended without a result (TaskFailedError).
// Callers branch on `err.code`, never on the text.

import { ERROR_CODES, isErrorCode, isRetryable, type ErrorCode } from "../protocol/errors.ts";

export { ERROR_CODES, isErrorCode, isRetryable, type ErrorCode };

/** A request the cluster (or the SDK itself) refused, with its code (E_QUEUE_FULL, E_UNKNOWN_TASK, ...). */
export class SchedulerError extends Error {
  /** The sentence alone; `message` is "CODE: detail" so a logged error still shows its code. */
  readonly detail: string;
  constructor(
    readonly code: ErrorCode,
    detail: string = ERROR_CODES[code],
  ) {
    super(`${code}: ${detail}`);
    this.name = "SchedulerError";
    this.detail = detail;
  }

  /** The same request may succeed later (another server, after a backoff). */
  get retryable(): boolean {
    return isRetryable(this.code);
  }
}

/** One failed attempt of a task, as the coordinator kept it. */
export interface AttemptError {
  attempt: number;
  code: ErrorCode;
  message: string;
  /** The worker that ran it (0: none, e.g. a deadline passed before any worker took it). */
  workerId: number;
  /** When the attempt ended, ms since the epoch. */
  at: number;
}

/** Codes a task can end with; anything else a handler throws is E_HANDLER. */
export type TaskFailureCode = Extract<ErrorCode,
  "E_HANDLER" | "E_TIMEOUT" | "E_WORKER_LOST" | "E_NO_HANDLER" | "E_DEADLINE" | "E_DEPENDENCY" | "E_CANCELLED">;

/** A task that ended failed, dead-lettered or cancelled: its last code and every attempt's error. */
export class TaskFailedError extends SchedulerError {
  constructor(
    readonly taskId: number,
    code: ErrorCode,
    detail: string,
    /** How many attempts ran (0 when it never started: a deadline, a failed dependency, a cancel). */
    readonly attempts: number,
    /** Every failed attempt the coordinator kept, oldest first. */
    readonly errors: AttemptError[],
  ) {
    super(code, detail);
    this.name = "TaskFailedError";
  }
}

/** Turns whatever a lower layer threw into a SchedulerError (non-scheduler errors become E_UNAVAILABLE). */
export function asSchedulerError(err: unknown): SchedulerError {
  if (err instanceof SchedulerError) return err;
  const code = (err as { code?: unknown } | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return new SchedulerError(isErrorCode(code) ? code : "E_UNAVAILABLE", message);
}
