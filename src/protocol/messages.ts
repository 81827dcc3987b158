// The closed set of messages on every link. A frame body is a batch of
// messages, each `u8 kind | u32 bytes | body`. Hot messages (SUBMIT, SUBMITTED,
// ASSIGN, RESULT, TASK_DONE) have hand-written binary bodies (codec.ts); the
// rest are msgpack maps whose shapes are the interfaces below.

export const PROTOCOL_VERSION = 2;

export const Kind = {
  /** any -> server, first message: who I am. msgpack Hello. */
  HELLO: 1,
  /** server -> any, reply to HELLO. msgpack Welcome. */
  WELCOME: 2,
  /** either way: a request failed, or (requestId 0) the connection is closing. msgpack ErrorMessage. */
  ERROR: 3,
  /** coordinator -> every connection: its role or epoch changed (promotion, step-down). msgpack RoleChange. */
  ROLE: 4,
  /** client -> coordinator: a new task. binary SubmitFields. */
  SUBMIT: 10,
  /** coordinator -> client: the task is accepted, with its id. binary. */
  SUBMITTED: 11,
  /** coordinator -> client: a task the client asked to hear about has ended. binary TaskDoneFields. */
  TASK_DONE: 12,
  /**
   * client -> coordinator or router: many new tasks as one unit, acknowledged once every one
   * of them is committed. binary `u32 requestId | u32 count | (u32 bytes | SUBMIT body) * count`.
   */
  SUBMIT_BATCH: 15,
  /** coordinator or router -> client: the outcome of each task of a SUBMIT_BATCH, in its order. binary SubmittedBatchFields. */
  SUBMITTED_BATCH: 16,
  /** coordinator -> worker: run this task (one lease). binary AssignFields. */
  ASSIGN: 13,
  /** worker -> coordinator: outcome of one lease. binary ResultFields. */
  RESULT: 14,
  /** worker -> coordinator, periodic: liveness and counters. msgpack Heartbeat. */
  HEARTBEAT: 20,
  /** any -> coordinator: ask for stats. msgpack {requestId}. */
  STATS_REQUEST: 21,
  /** coordinator -> asker. msgpack CoordinatorStats. */
  STATS: 22,
  /** client -> coordinator: status of a task by id. msgpack {requestId, taskId}. */
  TASK_QUERY: 23,
  /** coordinator -> client. msgpack TaskInfo. */
  TASK_INFO: 24,
  /** generic answer to the requests below: msgpack {requestId, ...}. */
  REPLY: 25,
  /** client -> coordinator: cancel a task. msgpack {requestId, taskId} -> REPLY {taskId, state}. */
  CANCEL: 26,
  /** client -> coordinator: tell me when this task ends. msgpack {requestId, taskId} -> TASK_DONE. */
  WATCH: 27,
  /** client -> coordinator: create a DAG of tasks atomically. msgpack {requestId, nodes: WorkflowNode[]} -> REPLY {taskIds}. */
  WORKFLOW: 28,
  /** client -> coordinator: the dead-letter queue. msgpack {requestId, offset, limit} -> REPLY {tasks: TaskInfo[], total}. */
  DLQ_LIST: 29,
  /** client -> coordinator: give a dead-lettered task new attempts. msgpack {requestId, taskId} -> REPLY {taskId, requeued}. */
  DLQ_REQUEUE: 34,
  /** client -> coordinator: forget dead-lettered tasks (all if taskIds is empty). msgpack {requestId, taskIds} -> REPLY {purged}. */
  DLQ_PURGE: 35,
  /** coordinator -> worker: stop a running task (cancelled). msgpack {taskId, attempt}. */
  ABORT: 36,
  /** worker -> coordinator: how far a running task is. msgpack {taskId, attempt, progress (0..1)}. */
  PROGRESS: 37,
  /** worker -> coordinator: shutting down; send nothing new. msgpack {}. */
  DRAIN: 38,
  /** primary -> its in-sync backups: I am stopping, take over now. msgpack {epoch}. */
  HANDOVER: 39,
  /** router -> coordinator: which parents on other shards do tasks here wait on? msgpack {requestId} -> REPLY {parentIds}. */
  FOREIGN_WAITS: 40,
  /** router -> coordinator: a parent on another shard ended. msgpack {requestId, taskId, state, output} -> REPLY {taskId, settled}. */
  PARENT_ENDED: 41,
  /** worker -> coordinator: your credit (slots) here is now this; it splits its slots among the coordinators it serves. msgpack {slots}. */
  CREDIT: 42,
  /** client -> router or primary: stream task events. msgpack Subscribe -> EVENTS until UNSUBSCRIBE, or an ERROR ends it. */
  SUBSCRIBE: 44,
  /** router or primary -> client: one shard's events for a subscription, and where they leave it. msgpack EventBatch. */
  EVENTS: 45,
  /** client -> router or primary: end a subscription. msgpack {requestId} (no answer). */
  UNSUBSCRIBE: 46,
  /** backup -> primary: send me a snapshot, then the log. msgpack {epoch}. */
  REPL_SYNC: 30,
  /** primary -> backup: `u32 epoch | f64 index | msgpack SchedulerState` (the whole state in one frame; the simulation's). */
  REPL_SNAPSHOT: 31,
  /** primary -> backup: `u32 epoch | f64 firstIndex | u32 count | (u32 bytes | log entry) * count`. */
  REPL_APPEND: 32,
  /** backup -> primary: `u32 epoch | f64 index` applied. */
  REPL_ACK: 33,
  /** primary -> backup: one part of a streamed snapshot. `u32 epoch | f64 index | u32 seq | u8 last | msgpack SnapshotPart`. */
  REPL_SNAPSHOT_PART: 48,
  /** backup -> primary: parts of the snapshot at `index` restored so far. `u32 epoch | f64 index | u32 parts`. */
  REPL_SNAPSHOT_ACK: 43,
} as const;

export type KindName = keyof typeof Kind;
export type KindCode = (typeof Kind)[KindName];

export const KIND_NAMES: Record<number, KindName> = Object.fromEntries(
  Object.entries(Kind).map(([name, code]) => [code, name as KindName]),
);

export type Role = "client" | "worker" | "coordinator" | "router" | "top";
export const ROLES: readonly Role[] = ["client", "worker", "coordinator", "router", "top"];

export interface Hello {
  role: Role;
  version: number;
  nodeId: string;
  token?: string;
  /** worker: how many tasks it runs at once (its credit). */
  slots?: number;
  /** worker: capability tags. */
  tags?: string[];
  /** worker: the task types it has handlers for (built-ins and --handlers); absent: any (older workers). */
  types?: string[];
  /** worker: its identity, stable across reconnects and coordinators (leases name it). */
  workerId?: number;
  /** coordinator peers: what the dialing coordinator is. */
  shard?: number;
  epoch?: number;
  primary?: boolean;
}

export interface RoleChange {
  nodeId: string;
  shard: number;
  epoch: number;
  primary: boolean;
}

export interface Welcome {
  role: Role;
  version: number;
  nodeId: string;
  shard: number;
  epoch: number;
  primary: boolean;
  /** coordinator: last log entry it holds (ranks candidates after a restart from disk). */
  index?: number;
}

export interface ErrorMessage {
  requestId: number;
  code: string;
  message: string;
}

export interface Heartbeat {
  running: number;
  done: number;
  failed: number;
  /** Ids of the tasks the worker runs now (of every shard): only these leases are extended. */
  taskIds: number[];
}

export const TaskStatus = { OK: 0, FAILED: 1 } as const;

export interface SubmitFields {
  requestId: number;
  priority: number;
  /** bit 0: send TASK_DONE to this connection when the task ends. */
  flags: number;
  maxAttempts: number;
  timeoutMs: number;
  type: string;
  /** empty string: none. */
  idempotencyKey: string;
  payload: Uint8Array;
  /** Present when flags has SUBMIT_FLAG_EXTRAS. */
  extras?: SubmitExtras;
}

export const SUBMIT_FLAG_NOTIFY = 1;
/** bit 1: the body ends with a SubmitExtras block. */
export const SUBMIT_FLAG_EXTRAS = 2;

export const BackoffType = { NONE: 0, FIXED: 1, EXPONENTIAL: 2 } as const;

/**
 * The less common submission options, after the payload:
 * `u32 delayMs | u32 deadlineMs | u8 backoffType | u32 backoffDelayMs | u32 backoffMaxDelayMs |
 *  u8 n | str8 tag * n | u16 m | f64 dependsOn * m`.
 * Times are relative to the coordinator's receipt (no clock skew between machines).
 */
export interface SubmitExtras {
  /** Run no sooner than this long after submission (0: at once). */
  delayMs: number;
  /** Fail with E_DEADLINE if not started within this long of submission (0: no deadline). */
  deadlineMs: number;
  backoffType: number;
  backoffDelayMs: number;
  backoffMaxDelayMs: number;
  tags: string[];
  dependsOn: number[];
}

/** Tasks per SUBMIT_BATCH at most (a frame's byte limit bounds its size too). */
export const SUBMIT_BATCH_TASKS_MAX = 10_000;

/** One task's outcome in a SUBMITTED_BATCH: `u8 0 | f64 taskId`, or `u8 1 | str8 code | str16 message`. */
export type BatchItemOutcome = { ok: true; taskId: number } | { ok: false; code: string; message: string };

export interface SubmittedBatchFields {
  requestId: number;
  outcomes: BatchItemOutcome[];
}

export interface SubmittedFields {
  requestId: number;
  taskId: number;
}

export interface AssignFields {
  taskId: number;
  attempt: number;
  timeoutMs: number;
  type: string;
  payload: Uint8Array;
  /** The outputs of the task's parents (dependsOn order): results flow along DAG edges. */
  inputs: Uint8Array[];
}

export interface ResultFields {
  taskId: number;
  attempt: number;
  status: number;
  /** OK: the handler's result bytes; FAILED: UTF-8 error text. */
  output: Uint8Array;
}

export interface TaskDoneFields {
  requestId: number;
  taskId: number;
  status: number;
  attempts: number;
  /** OK: the result bytes; FAILED: msgpack {code, message} (a cancelled task: E_CANCELLED). */
  output: Uint8Array;
}

export interface WorkerInfo {
  id: number;
  nodeId: string;
  slots: number;
  free: number;
  done: number;
  failed: number;
  heartbeatAgeMs: number;
  tags: string[];
  /** The task types it runs; absent: any. */
  types?: string[];
}

export interface ReplicationStats {
  role: "primary" | "backup" | "candidate";
  /** Index of the last log entry applied here. */
  appliedIndex: number;
  /** primary: index every in-sync backup has acknowledged. */
  committedIndex: number;
  /** primary: backups in sync now. */
  backupsInSync: number;
  /** primary: acknowledging without a backup (it is gone past --backup-timeout-ms). */
  alone: boolean;
  /** backup: the primary it follows. */
  following?: string;
  /** etcd mode: this node's replica id (its incarnation). */
  replicaId?: string;
  /** etcd mode, primary: the in-sync replicas as etcd holds them (replica ids, this one included). */
  isr?: string[];
  /** etcd mode, not primary: why it does not lead when there is no leader (e.g. not in the ISR, clock too far off). */
  notLeading?: string;
}

export interface CoordinatorStats {
  requestId: number;
  nodeId: string;
  shard: number;
  epoch: number;
  primary: boolean;
  replication: ReplicationStats;
  uptimeMs: number;
  queued: number;
  /** The queued tasks per submitted priority, 0 (highest) first; priorities with none left out. Absent from older coordinators. */
  queuedByPriority?: Array<{ priority: number; queued: number }>;
  leased: number;
  submitted: number;
  completed: number;
  failed: number;
  retried: number;
  rejectedQueueFull: number;
  retained: number;
  waiting: number;
  delayed: number;
  cancelled: number;
  deadlineMissed: number;
  /** Tasks in the dead-letter queue. */
  dead: number;
  /** Queued tasks no connected worker can run: it lacks their tags, or has no handler for their type. */
  unmatched: number;
  /** Submission-to-end latency of every task that ended here, as cumulative buckets (Prometheus). */
  latencyHistogram?: { le: number[]; counts: number[]; sumMs: number; count: number };
  /** Submission-to-finish latency of tasks finished in the last few seconds. */
  latencyMs: { p50: number; p99: number; max: number };
  workers: WorkerInfo[];
  /** The write-ahead log's work since start (with --data-dir only). */
  wal?: WalStats;
}

/** Group commits of the write-ahead log: entries / commits is the batch each fsync carries. */
export interface WalStats {
  /** Records appended (group commits): one fdatasync each, unless --fsync-interval-ms syncs them on a timer. */
  commits: number;
  /** fdatasyncs of the log: equal to commits without --fsync-interval-ms. */
  syncs: number;
  /** Replication log entries those records carried. */
  entries: number;
  bytes: number;
  snapshots: number;
  /** Time in fdatasync per sync, as cumulative buckets (Prometheus). */
  fsyncHistogram: { le: number[]; counts: number[]; sumMs: number; count: number };
  fsyncMsMax: number;
}

/** What a router answers to STATS_REQUEST: every coordinator it knows, reachable or not. */
export interface ClusterStats {
  requestId: number;
  router: { nodeId: string; uptimeMs: number; clients: number; forwarded: number; retried: number };
  coordinators: Array<{ address: string; reachable: boolean; stats?: CoordinatorStats; error?: string }>;
}

export interface TaskInfo {
  requestId: number;
  taskId: number;
  type: string;
  state: string;
  attempt: number;
  maxAttempts: number;
  priority: number;
  submittedAt: number;
  finishedAt: number;
  /** 0: none. */
  deadline: number;
  runAt: number;
  tags: string[];
  dependsOn: number[];
  /** Raw bytes (msgpack bin). */
  output?: Uint8Array;
  /** The last error's code (E_HANDLER, E_TIMEOUT, E_DEADLINE, ...). */
  code?: string;
  /** The last error as one line for people: "code: message". */
  error?: string;
  /** Every failed attempt kept: attempt number, worker, time, code and message. */
  errors: Array<{ attempt: number; workerId: number; at: number; code: string; message: string }>;
  /** A running task's last reported progress, 0..1 (absent: none reported). */
  progress?: number;
}

/** One task of a WORKFLOW: dependsOn names other nodes by position or existing tasks by id. */
export interface WorkflowNode {
  type: string;
  payload?: Uint8Array;
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  idempotencyKey?: string;
  delayMs?: number;
  deadlineMs?: number;
  backoff?: { type: "exponential" | "fixed"; delayMs: number; maxDelayMs?: number };
  tags?: string[];
  dependsOn?: Array<{ node: number } | { taskId: number }>;
}
