// The task record held by a coordinator, and the task id scheme: an id encodes
// its shard, so routers and clients route status and cancel by id alone.

/**
 * waiting: parents not done; delayed: not before runAt (delay or retry backoff);
 * queued: ready to run; leased: running on a worker; then completed, failed
 * (out of attempts: the dead-letter queue) or cancelled.
 */
export type TaskState = "waiting" | "delayed" | "queued" | "leased" | "completed" | "failed" | "cancelled";

export function isFinal(state: TaskState): boolean {
  return state === "completed" || state === "failed" || state === "cancelled";
}

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

export interface Backoff {
  type: "exponential" | "fixed";
  /** First retry's delay (exponential doubles it each retry; 0: retry at once). */
  delayMs: number;
  /** Cap on any one delay. */
  maxDelayMs: number;
}

const EMPTY_LIST: readonly never[] = Object.freeze([]);

/**
 * The empty list a task's dependants, watchers and errors start as: one shared,
 * frozen array, so the common task that never has any costs no allocation
 * (and no work for the garbage collector); a stray push on it throws.
 * Add to such a list only with appended().
 */
export function emptyList<T>(): T[] {
  return EMPTY_LIST as unknown as T[];
}

/** `list` with `item` added: a new array when the list is empty (it may be the shared one), else the same one. */
export function appended<T>(list: T[], item: T): T[] {
  if (list.length === 0) return [item];
  list.push(item);
  return list;
}

/** A copy for a snapshot, keeping empty lists shared. */
export function copiedList<T>(list: readonly T[]): T[] {
  return list.length === 0 ? emptyList<T>() : [...list];
}

/** One failed attempt, as the dead-letter queue shows it: its code (E_TIMEOUT, E_HANDLER, ...) apart from its sentence. */
export interface AttemptError {
  attempt: number;
  /** 0 when the attempt never reached a worker (deadline, dependency, cancel). */
  workerId: number;
  at: number;
  code: string;
  message: string;
}

const CODED = /^(E_[A-Z][A-Z_]*): ?([\s\S]*)$/;

/**
 * A worker reports a failed attempt as text, "E_CODE: sentence" (a handler's
 * own exception has no code: E_HANDLER). Split once, here, where it enters the
 * scheduler; past this point the code is a field of its own. Also reads the
 * errors of snapshots written before errors had a code ({error: text}).
 */
export function attemptErrorOf(text: string): { code: string; message: string } {
  const m = CODED.exec(text);
  return m === null ? { code: "E_HANDLER", message: text } : { code: m[1]!, message: m[2]! };
}

/** An AttemptError as stored by this version or an older one (which kept the code inside `error`). */
export function storedAttemptError(e: AttemptError | (Omit<AttemptError, "code" | "message"> & { error: string })): AttemptError {
  if ("code" in e && typeof e.code === "string") return e;
  const { error, ...rest } = e as Omit<AttemptError, "code" | "message"> & { error: string };
  return { ...rest, ...attemptErrorOf(String(error)) };
}

/** Someone to tell when the task ends: a connection and the request id it asked with. */
export interface Watcher {
  conn: number;
  requestId: number;
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
  /** Fail with E_DEADLINE if not started by then (0: none). */
  readonly deadline: number;
  readonly backoff: Backoff;
  /** Capabilities a worker must advertise to run it. */
  readonly tags: readonly string[];
  readonly dependsOn: readonly number[];
  state: TaskState;
  /** Parents not completed yet. */
  waitingOn: number;
  /** Tasks waiting on this one. */
  dependants: number[];
  /** Not before this time (delayed tasks and retry backoff). */
  runAt: number;
  /** Rank for the ready queue: priority plus how long it has been ready (see ready-queue.ts). */
  band: number;
  /** Number of the current or last lease: the fencing token a result must carry. */
  attempt: number;
  /** Attempts used before the last requeue from the dead-letter queue. */
  attemptBase: number;
  workerId: number;
  leasedAt: number;
  leaseExpiresAt: number;
  watchers: Watcher[];
  output: Uint8Array | undefined;
  /** Every failed attempt, oldest first (bounded). */
  errors: AttemptError[];
  finishedAt: number;
  /** Outputs of parents on other shards, as [parent id, output] (inputs for the handler). */
  foreignOutputs: Array<[number, Uint8Array]>;
}

/**
 * A parent on another shard that tasks here wait on, while its end is not
 * known here. The router watches it there and reports its end
 * (Scheduler.foreignParentEnded), which settles the record and removes it: a
 * task that needs the parent again (a requeue) waits on a new record.
 */
export interface ForeignParent {
  readonly id: number;
  /** Tasks here waiting on it. */
  dependants: number[];
}
