// What submit() hands back: a task's id with the calls that concern it, and the
// typing that ties each task type to its payload and result types.

import type { TaskState } from "../core/task.ts";
import type { TaskInfo } from "../protocol/messages.ts";

export type { TaskState };

/**
 * Payload and result types per task type, checked at compile time:
 *   connect<{ resize: { payload: Image; result: Image } }>(...)
 * Without one, any type name is accepted and values are `unknown`.
 */
export type TaskTypes<M = Record<string, unknown>> = { [K in keyof M]: { payload?: unknown; result?: unknown } };

/** The default: any task type, payloads and results not checked. */
export type AnyTasks = Record<string, { payload: unknown; result: unknown }>;

export type TaskName<M> = keyof M & string;
export type PayloadOf<M, K extends keyof M> = M[K] extends { payload: infer P } ? P : unknown;
export type ResultOf<M, K extends keyof M> = M[K] extends { result: infer R } ? R : unknown;

/** A task as the coordinator holds it, its state typed (the wire carries it as a string). */
export type TaskStatus = Omit<TaskInfo, "state" | "requestId"> & { state: TaskState };

/** What a handle asks of the client that made it. */
export interface HandleOwner {
  result(taskId: number): Promise<unknown>;
  status(taskId: number): Promise<TaskStatus>;
  cancel(taskId: number): Promise<TaskState>;
}

/** A submitted task. Every method returns a promise; none throws synchronously. */
export class TaskHandle<R = unknown> {
  constructor(
    readonly id: number,
    /** The key it was submitted under (the caller's, or one the SDK generated). */
    readonly idempotencyKey: string,
    private readonly owner: HandleOwner,
  ) {}

  /** Waits for the end: the decoded result, or a TaskFailedError (code, attempts, every attempt's error). */
  result(): Promise<R> {
    return this.owner.result(this.id) as Promise<R>;
  }

  /** The task as the coordinator holds it now: state, attempt, errors, progress. */
  status(): Promise<TaskStatus> {
    return this.owner.status(this.id);
  }

  /** Cancels it unless it has ended (a running attempt is aborted); resolves with its state after. */
  cancel(): Promise<TaskState> {
    return this.owner.cancel(this.id);
  }
}
