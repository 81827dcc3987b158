// The task record held by a coordinator, and the task id scheme: an id encodes
// its shard, so routers and clients route status and cancel by id alone.

export type TaskState = "queued" | "leased" | "completed" | "failed";

/** Seq numbers per shard: 2^40 (about 10^12) before ids would collide. */
const SEQ_SPAN = 2 ** 40;
/** Shards that keep every id a safe integer (< 2^53). */
export const SHARD_MAX = 2 ** 12 - 1;

export function makeTaskId(shard: number, seq: number): number {
  return shard * SEQ_SPAN + seq;
}

export function shardOfTask(taskId: number): number {
  return Math.floor(taskId / SEQ_SPAN);
}

export function seqOfTask(taskId: number): number {
  return taskId % SEQ_SPAN;
}

export interface Task {
  readonly id: number;
  readonly type: string;
  /** Owned bytes (the shell copies them out of the frame). */
  readonly payload: Uint8Array;
  readonly priority: number;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly idempotencyKey: string;
  readonly submittedAt: number;
  state: TaskState;
  /** Number of the current or last lease: the fencing token a result must carry. */
  attempt: number;
  workerId: number;
  leasedAt: number;
  leaseExpiresAt: number;
  /** Connection to tell when the task ends (0: nobody), and its request id. */
  watcher: number;
  watchRequestId: number;
  output: Uint8Array | undefined;
  /** One line per failed attempt, oldest first. */
  errors: string[];
  finishedAt: number;
}
