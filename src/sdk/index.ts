// The package's entry point (import from "bun-task-scheduler"): the failover
// client, task handles, typed errors, in-process workers, and the single-connection
// client under it.

export { connect, Scheduler, type ConnectOptions, type Link } from "./scheduler.ts";
export { TaskHandle, type AnyTasks, type PayloadOf, type ResultOf, type TaskName, type TaskState, type TaskStatus, type TaskTypes } from "./task-handle.ts";
export { ERROR_CODES, isErrorCode, SchedulerError, TaskFailedError, type AttemptError, type ErrorCode, type TaskFailureCode } from "./errors.ts";
export { DEFAULT_RETRY, type RetryOptions } from "./failover.ts";
export { BatchSubmitError, decodeResult, SchedulerClient, type BatchItemOutcome, type BatchTask, type ClientOptions, type SubmitOptions, type TaskOutcome, type WorkflowTask } from "./client.ts";
export type { ClusterStats, CoordinatorStats, TaskInfo } from "../protocol/messages.ts";
export { CLOSE_TIMEOUT_MS_DEFAULT, createWorker, type InProcessWorker, type WorkerOptions } from "./worker.ts";
export type { DrainReport } from "../worker/worker.ts";
export { defineHandlers, type HandlerContext, type Handlers } from "./handlers.ts";
export { EVENTS_QUEUED_MAX, TaskEvents, type EventFilter, type EventsOptions, type SchedulerEvent, type TaskEventKind } from "./events.ts";
