// The TypeScript client library: submit tasks, wait for their outcome, query
// status and stats. The `client` load generator is built on it. One TCP
// connection carries any number of pipelined requests; writes are batched.

import { decode, encode } from "@msgpack/msgpack";
import { Connection, DEFAULT_NET_LIMITS, type ConnectionHandler, type NetLimits } from "../net/connection.ts";
import { dial, parseHostPort, type HostPort } from "../net/endpoints.ts";
import type { ClientTls } from "../net/tls.ts";
import { readControl, readSubmitted, readSubmittedBatch, readTaskDone, writeControl, writeSubmit, writeSubmitBatch, writeSubmitBody, type Reader } from "../protocol/codec.ts";
import { isErrorCode, ProtocolError, type ErrorCode } from "../protocol/errors.ts";
import { SchedulerError, SchedulerError as TaskError } from "./errors.ts";
import { builtinPayloadProblem } from "../worker/builtin-tasks.ts";
import {
  BackoffType, Kind, PROTOCOL_VERSION, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_NOTIFY, TaskStatus, type BatchItemOutcome, type SubmitExtras, type SubmitFields, type WorkflowNode,
  type ClusterStats, type CoordinatorStats, type ErrorMessage, type Hello, type RoleChange, type TaskInfo, type Welcome,
} from "../protocol/messages.ts";

/** Ranges are checked before sending (checkSubmitOptions): out of range is E_BAD_REQUEST, never wrapped. */
export interface SubmitOptions {
  /** 0 (highest) to 255. Default 100. */
  priority?: number;
  /** 1 to 65535; 0 or absent: the coordinator's default. */
  maxAttempts?: number;
  /** Per attempt, 1 to 2^32-1 ms; 0 or absent: the coordinator's default. */
  timeoutMs?: number;
  /** A retried submission with the same key returns the original task. */
  idempotencyKey?: string;
  /** Run no sooner than this long from now. */
  delayMs?: number;
  /** Run no sooner than this time (ms since the epoch, or a Date); converted to a delay on this machine's clock. */
  runAt?: number | Date;
  /** Fail with E_DEADLINE unless started within this long from now. */
  deadlineMs?: number;
  /** ... or by this time (ms since the epoch, or a Date). */
  deadline?: number | Date;
  /** Delay between attempts: exponential (doubling from delayMs, jittered, capped) or fixed. */
  backoff?: { type: "exponential" | "fixed"; delayMs: number; maxDelayMs?: number };
  /** Only workers advertising all these tags run it. */
  tags?: string[];
  /** Task ids (of the same shard) that must complete first. */
  dependsOn?: number[];
}

/** One task of a workflow; dependsOn names other nodes by index or existing tasks by id. */
export interface WorkflowTask extends Omit<SubmitOptions, "dependsOn" | "runAt" | "deadline"> {
  type: string;
  payload?: unknown;
  dependsOn?: Array<{ node: number } | { taskId: number }>;
}

export interface TaskOutcome {
  taskId: number;
  ok: boolean;
  attempts: number;
  /** ok: the handler's result bytes (msgpack for built-in types); failed: empty. */
  output: Uint8Array;
  /** failed: the last attempt's error. */
  error?: string;
}

/** TaskError is the old name of SchedulerError, kept for existing callers. */
export { SchedulerError, SchedulerError as TaskError };

export interface ClientOptions {
  /** Presented in the handshake; the server's tokens file gives it a role (read, submit, admin). */
  token?: string;
  nodeId?: string;
  limits?: NetLimits;
  /** Connect over TLS, trusting this CA (PEM text; see loadClientTls for a file). */
  tls?: ClientTls;
  /**
   * The role in the handshake; "client" unless given. A router's own HTTP API
   * says "router" (with the cluster token): it then takes a slot idle clients
   * cannot fill, and is never closed for being idle.
   */
  role?: "client" | "router";
}

export const DEFAULT_PRIORITY = 100;

/** One task of submitMany / submitBatch. */
export interface BatchTask {
  type: string;
  payload?: unknown;
  options?: SubmitOptions;
}

export type { BatchItemOutcome };

/**
 * Payload bytes per SUBMIT_BATCH message at most: a longer list goes as
 * several batches, each well inside a server's 16 MiB frame limit.
 */
export const BATCH_PAYLOAD_BYTES_MAX = 4 * 1024 * 1024;

/** submitMany() when some task was refused: `outcomes` says, per task in order, which were accepted (with ids) and which not. */
export class BatchSubmitError extends SchedulerError {
  constructor(
    readonly outcomes: BatchItemOutcome[],
    first: { index: number; code: ErrorCode; message: string },
  ) {
    super(first.code, `task ${first.index} of the batch: ${first.message} (${outcomes.filter((o) => !o.ok).length} of ${outcomes.length} refused; see outcomes)`);
    this.name = "BatchSubmitError";
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  /** run(): resolve on TASK_DONE, not on SUBMITTED. */
  waitsForDone: boolean;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();

/** A task's output as a value: msgpack decoded, raw bytes when it is not msgpack, undefined when empty. */
export function decodeResult(output: Uint8Array | undefined): unknown {
  if (output === undefined || output.length === 0) return undefined;
  try {
    return decode(output);
  } catch {
    return output;
  }
}

/** Connects to a router or coordinator ("host:port") and completes the handshake. */
export function connect(address: string | HostPort, options: ClientOptions = {}): Promise<SchedulerClient> {
  return SchedulerClient.connect(address, options);
}
const U8_MAX = 0xff;
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

const isIntIn = (v: unknown, max: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= max;
/** A number from 0 to max: NaN and the infinities fail one of the two comparisons. */
const isIn = (v: unknown, max: number): boolean => typeof v === "number" && v >= 0 && v <= max;

/** Every field of SubmitOptions: a misspelt one ({priorty: 3}) is refused, not silently ignored. */
export const SUBMIT_OPTION_FIELDS: readonly string[] = [
  "priority", "maxAttempts", "timeoutMs", "idempotencyKey", "delayMs", "runAt", "deadlineMs", "deadline", "backoff", "tags", "dependsOn",
];
/** Every field of a WorkflowTask (no runAt or deadline: a workflow's nodes take relative times). */
export const WORKFLOW_TASK_FIELDS: readonly string[] = [
  "type", "payload", "priority", "maxAttempts", "timeoutMs", "idempotencyKey", "delayMs", "deadlineMs", "backoff", "tags", "dependsOn",
];
export const BACKOFF_FIELDS: readonly string[] = ["type", "delayMs", "maxDelayMs"];

/** The first key of `value` that is not one of `known`, or undefined. */
export function unknownField(value: object, known: readonly string[]): string | undefined {
  return Object.keys(value).find((key) => !known.includes(key));
}

/**
 * Why these options cannot be sent, or undefined. A field the options do not have
 * is refused by name (it would be ignored: a typo would quietly change nothing).
 * The wire's fields have fixed widths (u8 priority, u16 maxAttempts, u32 times)
 * and would silently wrap an out-of-range value (priority 300 would arrive as 44),
 * so each is checked here.
 */
export function checkSubmitOptions(o: Omit<SubmitOptions, "dependsOn">, nowMs = Date.now(), known: readonly string[] = SUBMIT_OPTION_FIELDS): string | undefined {
  const bad = (field: string, range: string, value: unknown) => `${field} must be ${range}, not ${String(value)}`;
  if (o === null || typeof o !== "object") return `options must be an object, not ${String(o)}`;
  const stray = unknownField(o, known);
  if (stray !== undefined) return `unknown option "${stray}" (known: ${known.join(", ")})`;
  if (o.priority !== undefined && !isIntIn(o.priority, U8_MAX)) return bad("priority", "an integer from 0 (highest) to 255", o.priority);
  if (o.maxAttempts !== undefined && !isIntIn(o.maxAttempts, U16_MAX)) {
    return bad("maxAttempts", "an integer from 1 to 65535 (0: the coordinator's default)", o.maxAttempts);
  }
  if (o.timeoutMs !== undefined && !isIntIn(o.timeoutMs, U32_MAX)) return bad("timeoutMs", `an integer from 1 to ${U32_MAX} ms (0: the default)`, o.timeoutMs);
  if (o.delayMs !== undefined && !isIn(o.delayMs, U32_MAX)) return bad("delayMs", `a number of ms from 0 to ${U32_MAX}`, o.delayMs);
  if (o.deadlineMs !== undefined && !isIn(o.deadlineMs, U32_MAX)) return bad("deadlineMs", `a number of ms from 0 to ${U32_MAX}`, o.deadlineMs);
  for (const field of ["runAt", "deadline"] as const) {
    const at = o[field];
    if (at === undefined) continue;
    const ms = at instanceof Date ? at.getTime() : at;
    // Sent as a u32 delay from now: up to about 49.7 days ahead.
    if (!isIn(ms, nowMs + U32_MAX)) return bad(field, `a time in ms since the epoch (or a valid Date), at most ${U32_MAX} ms from now`, at);
  }
  const b = o.backoff;
  if (b !== undefined) {
    if (b === null || typeof b !== "object") return bad("backoff", "an object", b);
    const strayBackoff = unknownField(b, BACKOFF_FIELDS);
    if (strayBackoff !== undefined) return `unknown option "backoff.${strayBackoff}" (known: ${BACKOFF_FIELDS.join(", ")})`;
    if (b.type !== "exponential" && b.type !== "fixed") return bad("backoff.type", `"exponential" or "fixed"`, b.type);
    if (!isIn(b.delayMs, U32_MAX)) return bad("backoff.delayMs", `a number of ms from 0 to ${U32_MAX}`, b.delayMs);
    if (b.maxDelayMs !== undefined && !isIn(b.maxDelayMs, U32_MAX)) return bad("backoff.maxDelayMs", `a number of ms from 0 to ${U32_MAX}`, b.maxDelayMs);
  }
  return undefined;
}

/** Milliseconds from now until an absolute time (never negative, at most what a u32 holds). */
function untilMs(at: number | Date): number {
  const ms = (at instanceof Date ? at.getTime() : at) - Date.now();
  return Math.min(U32_MAX, Math.max(0, Math.ceil(ms)));
}

/** The extras block of a submission, or undefined when no option needs it (the common, shorter case). */
function extrasOf(o: SubmitOptions): SubmitExtras | undefined {
  if (o.delayMs === undefined && o.runAt === undefined && o.deadlineMs === undefined && o.deadline === undefined
    && o.backoff === undefined && o.tags === undefined && o.dependsOn === undefined) return undefined;
  const delayMs = o.runAt !== undefined ? untilMs(o.runAt) : Math.max(0, o.delayMs ?? 0);
  // A deadline already past still has to reach the coordinator as "past": 1 ms is the earliest it can say.
  const deadlineMs = o.deadline !== undefined ? Math.max(1, untilMs(o.deadline)) : Math.max(0, o.deadlineMs ?? 0);
  const b = o.backoff;
  return {
    delayMs: Math.min(U32_MAX, delayMs),
    deadlineMs: Math.min(U32_MAX, deadlineMs),
    backoffType: b === undefined ? BackoffType.NONE : b.type === "fixed" ? BackoffType.FIXED : BackoffType.EXPONENTIAL,
    backoffDelayMs: Math.min(U32_MAX, b?.delayMs ?? 0),
    backoffMaxDelayMs: Math.min(U32_MAX, b?.maxDelayMs ?? 0),
    tags: o.tags ?? [],
    dependsOn: o.dependsOn ?? [],
  };
}

/**
 * Where tasks sent with sendTasks() end, one call each: the load generators'
 * path, with no promise or closure per task. `output` is a view (copy it to
 * keep it); `code` is set when the task was refused or lost (E_*), undefined
 * when it ran (ok, or failed with its error text in output).
 */
export interface TaskEnds {
  taskEnded(token: number, ok: boolean, output: Uint8Array, code: string | undefined): void;
}

/** A SUBMIT_BATCH sent by sendTasks(): its tasks' tokens, and their own request ids when each waits for its TASK_DONE. */
interface SentBatch {
  tokens: number[];
  requestIds: number[] | undefined;
}

export class SchedulerClient implements ConnectionHandler {
  private conn: Connection | undefined;
  private readonly pending = new Map<number, Pending>();
  /** sendTasks(): request id -> the caller's token (a number: no object per task). */
  private readonly tokens = new Map<number, number>();
  private readonly batches = new Map<number, SentBatch>();
  private readonly scratch: SubmitFields = { requestId: 0, priority: DEFAULT_PRIORITY, flags: 0, maxAttempts: 0, timeoutMs: 0, type: "", idempotencyKey: "", payload: EMPTY };
  /** Where sendTasks()'s tasks end; set before the first call. */
  taskEnds: TaskEnds | undefined;
  private nextRequestId = 1;
  private welcome: Welcome | undefined;
  private welcomed: { resolve(w: Welcome): void; reject(e: Error): void } | undefined;
  private closedReason: string | undefined;
  /** The server's reason when it closed the connection with an ERROR (E_UNAUTHORIZED, E_SLOW_READER, ...). */
  private closedBy: TaskError | undefined;

  /** Called when a coordinator this client is connected to directly announces a new role or epoch. */
  onRole: ((change: RoleChange) => void) | undefined;

  /** Connects and completes the handshake. */
  static async connect(address: string | HostPort, options: ClientOptions = {}): Promise<SchedulerClient> {
    const target = typeof address === "string" ? parseHostPort(address) : address;
    const client = new SchedulerClient();
    const conn = await dial(target.host, target.port, client, options.limits ?? DEFAULT_NET_LIMITS, options.tls);
    client.conn = conn;
    const hello: Hello = { role: options.role ?? "client", version: PROTOCOL_VERSION, nodeId: options.nodeId ?? `client-${process.pid}`, token: options.token };
    const welcome = new Promise<Welcome>((resolve, reject) => (client.welcomed = { resolve, reject }));
    writeControl(conn.writer, Kind.HELLO, hello);
    conn.queueFlush();
    client.welcome = await welcome;
    return client;
  }

  /** What the server said about itself in the handshake. */
  get server(): Welcome {
    if (this.welcome === undefined) throw new Error("not connected");
    return this.welcome;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedReason !== undefined;
  }

  /** Why the connection closed (undefined while open). */
  get closeReason(): string | undefined {
    return this.closedReason;
  }

  /** Submits a task; resolves with its id once the coordinator has accepted it. */
  submit(type: string, payload: unknown, options: SubmitOptions = {}): Promise<number> {
    return this.send(type, payload, options, false) as Promise<number>;
  }

  /** Submits a task and resolves when it has ended (completed, or failed for good). */
  run(type: string, payload: unknown, options: SubmitOptions = {}): Promise<TaskOutcome> {
    return this.send(type, payload, options, true) as Promise<TaskOutcome>;
  }

  /** Resolves when the task ends (at once if it has), like run() for a task submitted earlier. */
  wait(taskId: number): Promise<TaskOutcome> {
    return this.request(true, (w, requestId) => writeControl(w, Kind.WATCH, { requestId, taskId })) as Promise<TaskOutcome>;
  }

  /** Cancels a task that has not ended (a running one is aborted on its worker); resolves with its state after. */
  async cancel(taskId: number): Promise<string> {
    const reply = (await this.control(Kind.CANCEL, { taskId })) as { state: string };
    return reply.state;
  }

  /** Creates every task of a DAG at once (or none); resolves with their ids in the order given. */
  async workflow(tasks: WorkflowTask[]): Promise<number[]> {
    for (const [i, t] of tasks.entries()) {
      const problem = checkSubmitOptions(t, Date.now(), WORKFLOW_TASK_FIELDS);
      if (problem !== undefined) throw new TaskError("E_BAD_REQUEST", `workflow task ${i}: ${problem}`);
    }
    const nodes: WorkflowNode[] = tasks.map((t) => ({
      type: t.type,
      payload: t.payload instanceof Uint8Array ? t.payload : t.payload === undefined ? undefined : encode(t.payload),
      priority: t.priority, maxAttempts: t.maxAttempts, timeoutMs: t.timeoutMs, idempotencyKey: t.idempotencyKey,
      delayMs: t.delayMs, deadlineMs: t.deadlineMs, backoff: t.backoff, tags: t.tags, dependsOn: t.dependsOn,
    }));
    for (const [i, n] of nodes.entries()) {
      const problem = builtinPayloadProblem(n.type, n.payload ?? EMPTY);
      if (problem !== undefined) throw new TaskError("E_BAD_REQUEST", `workflow task ${i}: ${problem}`);
    }
    const reply = (await this.control(Kind.WORKFLOW, { nodes })) as { taskIds: number[] };
    return reply.taskIds;
  }

  /** The dead-letter queue (every shard's, through a router), oldest first. */
  async deadLetters(offset = 0, limit = 100): Promise<{ tasks: TaskInfo[]; total: number }> {
    return (await this.control(Kind.DLQ_LIST, { offset, limit })) as { tasks: TaskInfo[]; total: number };
  }

  /** Gives a dead-lettered task its attempts again. */
  async requeue(taskId: number): Promise<void> {
    await this.control(Kind.DLQ_REQUEUE, { taskId });
  }

  /** Forgets dead-lettered tasks (all of them when no ids are given); resolves with how many. */
  async purgeDeadLetters(taskIds: number[] = []): Promise<number> {
    const reply = (await this.control(Kind.DLQ_PURGE, { taskIds })) as { purged: number };
    return reply.purged;
  }

  /**
   * Submits many tasks as SUBMIT_BATCH messages (one per SUBMIT_BATCH_TASKS_MAX
   * tasks); resolves with their ids in order once every one is accepted
   * (replicated, and logged with --data-dir). If any is refused, rejects with a
   * BatchSubmitError whose outcomes say which were accepted: those exist.
   */
  async submitMany(tasks: BatchTask[]): Promise<number[]> {
    const outcomes = await this.submitBatch(tasks);
    const refused = outcomes.findIndex((o) => !o.ok);
    if (refused < 0) return outcomes.map((o) => (o as { taskId: number }).taskId);
    const first = outcomes[refused] as { code: string; message: string };
    throw new BatchSubmitError(outcomes, { index: refused, code: isErrorCode(first.code) ? first.code : "E_BAD_REQUEST", message: first.message });
  }

  /**
   * Submits many tasks as SUBMIT_BATCH messages and resolves with each task's
   * outcome in order: accepted with its id, or refused with a code (a bad
   * option is refused here, the rest by the server, task by task). Rejects only
   * when a whole batch failed (the connection, E_NOT_PRIMARY, ...): then no
   * task of it was acknowledged, and a retry under the same idempotency keys is safe.
   */
  async submitBatch(tasks: BatchTask[]): Promise<BatchItemOutcome[]> {
    const outcomes: BatchItemOutcome[] = new Array(tasks.length);
    const sends: Promise<void>[] = [];
    let chunk: Array<{ index: number; fields: SubmitFields }> = [];
    let chunkBytes = 0;
    const flush = () => {
      const sent = chunk;
      chunk = [];
      chunkBytes = 0;
      sends.push(this.sendBatch(sent.map((t) => t.fields)).then((answers) => {
        for (let i = 0; i < sent.length; i++) outcomes[sent[i]!.index] = answers[i]!;
      }));
    };
    for (const [index, t] of tasks.entries()) {
      const fields = this.submitFields(t.type, t.payload, t.options ?? {}, false);
      if (typeof fields === "string") {
        outcomes[index] = { ok: false, code: "E_BAD_REQUEST", message: fields };
        continue;
      }
      if (chunk.length > 0 && (chunk.length >= SUBMIT_BATCH_TASKS_MAX || chunkBytes + fields.payload.length > BATCH_PAYLOAD_BYTES_MAX)) flush();
      chunk.push({ index, fields });
      chunkBytes += fields.payload.length;
    }
    if (chunk.length > 0) flush();
    await Promise.all(sends);
    return outcomes;
  }

  /**
   * The load generators' path: sends `count` tasks, as single SUBMITs or as one
   * SUBMIT_BATCH, and reports each one's end to `taskEnds` (on its acknowledgement,
   * or on its TASK_DONE with `waitForEnd`). `fill(k, fields)` sets task k's type,
   * payload and key in one reused object and returns its token. Throws
   * E_UNAVAILABLE when the connection is closed (nothing was sent).
   */
  sendTasks(count: number, fill: (k: number, fields: SubmitFields) => number, waitForEnd: boolean, asBatch: boolean): void {
    const conn = this.usable();
    const f = this.scratch;
    f.flags = waitForEnd ? SUBMIT_FLAG_NOTIFY : 0;
    const w = conn.writer;
    if (!asBatch) {
      for (let k = 0; k < count; k++) {
        const token = fill(k, f);
        f.requestId = this.takeRequestId();
        writeSubmit(w, f);
        this.tokens.set(f.requestId, token);
      }
    } else {
      const batch: SentBatch = { tokens: new Array(count), requestIds: waitForEnd ? new Array(count) : undefined };
      const batchId = this.takeRequestId();
      w.begin(Kind.SUBMIT_BATCH);
      w.u32(batchId);
      w.u32(count);
      for (let k = 0; k < count; k++) {
        batch.tokens[k] = fill(k, f);
        f.requestId = waitForEnd ? this.takeRequestId() : 0;
        if (batch.requestIds !== undefined) {
          batch.requestIds[k] = f.requestId;
          this.tokens.set(f.requestId, batch.tokens[k]!);
        }
        const lengthAt = w.length;
        w.u32(0);
        writeSubmitBody(w, f);
        w.view.setUint32(lengthAt, w.length - lengthAt - 4, true);
      }
      w.end();
      this.batches.set(batchId, batch);
    }
    conn.queueFlush();
  }

  /** A SUBMITTED_BATCH for sendTasks(): refused tasks end now; accepted ones now too unless they wait for their TASK_DONE. */
  private batchAnswered(batch: SentBatch, r: Reader): void {
    const outcomes = readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX).outcomes;
    for (let k = 0; k < batch.tokens.length; k++) {
      const o = outcomes[k] ?? { ok: false, code: "E_BAD_FRAME", message: "no outcome for this task" };
      if (o.ok && batch.requestIds !== undefined) continue;
      if (batch.requestIds !== undefined) this.tokens.delete(batch.requestIds[k]!);
      this.taskEnds?.taskEnded(batch.tokens[k]!, o.ok, EMPTY, o.ok ? undefined : o.code);
    }
  }

  /** A batch of sendTasks() failed whole: each of its tasks ends with `code`. */
  private batchFailed(batch: SentBatch, code: string): void {
    for (let k = 0; k < batch.tokens.length; k++) {
      if (batch.requestIds !== undefined && !this.tokens.delete(batch.requestIds[k]!)) continue; // ended already
      this.taskEnds?.taskEnded(batch.tokens[k]!, false, EMPTY, code);
    }
  }

  /** One SUBMIT_BATCH; resolves with its SUBMITTED_BATCH's outcomes. */
  private sendBatch(tasks: SubmitFields[]): Promise<BatchItemOutcome[]> {
    const answer = this.request(false, (w, requestId) => writeSubmitBatch(w, requestId, tasks)) as Promise<BatchItemOutcome[]>;
    return answer.then((outcomes) => {
      if (outcomes.length !== tasks.length) throw new TaskError("E_BAD_FRAME", `the server answered a batch of ${tasks.length} tasks with ${outcomes.length} outcomes`);
      return outcomes;
    });
  }

  /** A finished task's result, decoded (msgpack; raw bytes otherwise). Rejects with E_UNKNOWN_TASK, E_HANDLER (it failed or was cancelled) or E_BAD_REQUEST (not finished yet). */
  async result(taskId: number): Promise<unknown> {
    const info = await this.task(taskId);
    if (info.state !== "completed") {
      throw new TaskError(info.state === "failed" || info.state === "cancelled" ? "E_HANDLER" : "E_BAD_REQUEST", `task ${taskId} is ${info.state}${info.error ? `: ${info.error}` : ""}`);
    }
    return decodeResult(info.output);
  }

  task(taskId: number): Promise<TaskInfo> {
    return this.control(Kind.TASK_QUERY, { taskId }) as Promise<TaskInfo>;
  }

  /** The task submitted with this idempotency key, while a shard holds it (rejects with E_UNKNOWN_TASK otherwise). */
  taskByKey(idempotencyKey: string): Promise<TaskInfo> {
    if (idempotencyKey === "") return Promise.reject(new TaskError("E_BAD_REQUEST", "an idempotency key is a non-empty string"));
    return this.control(Kind.TASK_QUERY, { idempotencyKey }) as Promise<TaskInfo>;
  }

  /** The server's own stats: a coordinator's CoordinatorStats, or a router's ClusterStats. */
  stats(): Promise<CoordinatorStats | ClusterStats> {
    return this.control(Kind.STATS_REQUEST, {}) as Promise<CoordinatorStats | ClusterStats>;
  }

  /** Stats in one shape whether connected to a router or straight to a coordinator. */
  async clusterStats(): Promise<ClusterStats> {
    const stats = await this.stats();
    if ("coordinators" in stats) return stats;
    return {
      requestId: stats.requestId,
      router: { nodeId: "", uptimeMs: 0, clients: 0, forwarded: 0, retried: 0 },
      coordinators: [{ address: "direct", reachable: true, stats }],
    };
  }

  close(): void {
    this.conn?.close("client closed");
  }

  // ------------------------------------------------------------ internals

  private send(type: string, payload: unknown, options: SubmitOptions, waitsForDone: boolean): Promise<unknown> {
    const fields = this.submitFields(type, payload, options, waitsForDone);
    if (typeof fields === "string") return Promise.reject(new TaskError("E_BAD_REQUEST", fields));
    return this.request(waitsForDone, (w, requestId) => {
      fields.requestId = requestId;
      writeSubmit(w, fields);
    });
  }

  /** A task as the wire carries it (requestId 0 until sent), or why it cannot be sent. */
  private submitFields(type: string, payload: unknown, options: SubmitOptions, waitsForDone: boolean): SubmitFields | string {
    const problem = checkSubmitOptions(options);
    if (problem !== undefined) return problem;
    const bytes = payload instanceof Uint8Array ? payload : payload === undefined ? EMPTY : encode(payload);
    // A built-in type's payload is checked here, so a sleep of "abc" is refused before it exists, not failed on a worker.
    const badPayload = builtinPayloadProblem(type, bytes);
    if (badPayload !== undefined) return badPayload;
    return {
      requestId: 0,
      priority: options.priority ?? DEFAULT_PRIORITY,
      flags: waitsForDone ? SUBMIT_FLAG_NOTIFY : 0,
      maxAttempts: options.maxAttempts ?? 0,
      timeoutMs: options.timeoutMs ?? 0,
      type,
      idempotencyKey: options.idempotencyKey ?? "",
      payload: bytes,
      extras: extrasOf(options),
    };
  }

  private control(kind: number, body: Record<string, unknown>): Promise<unknown> {
    return this.request(false, (w, requestId) => writeControl(w, kind, { ...body, requestId }));
  }

  /**
   * Writes one request and returns the promise of its answer. Every failure,
   * a closed connection included, comes back as a rejected promise: a caller
   * awaiting it never has to wrap the call itself in try/catch.
   */
  private request(waitsForDone: boolean, write: (w: Connection["writer"], requestId: number) => void): Promise<unknown> {
    let conn: Connection;
    try {
      conn = this.usable();
    } catch (err) {
      return Promise.reject(err);
    }
    const requestId = this.takeRequestId();
    const promise = new Promise((resolve, reject) => this.pending.set(requestId, { resolve, reject, waitsForDone }));
    try {
      write(conn.writer, requestId);
    } catch (err) {
      conn.writer.abandon();
      this.pending.delete(requestId);
      const code = err instanceof ProtocolError ? err.code : "E_BAD_REQUEST";
      return Promise.reject(new TaskError(code, (err as Error).message));
    }
    conn.queueFlush();
    return promise;
  }

  private usable(): Connection {
    if (this.conn === undefined || this.closedReason !== undefined) {
      throw new TaskError("E_UNAVAILABLE", `connection closed: ${this.closedReason ?? "not connected"}`);
    }
    return this.conn;
  }

  private takeRequestId(): number {
    const id = this.nextRequestId;
    this.nextRequestId = id >= 0xffffffff ? 1 : id + 1;
    return id;
  }

  onMessage(_conn: Connection, kind: number, r: Reader): void {
    switch (kind) {
      case Kind.SUBMITTED: {
        const f = readSubmitted(r);
        const token = this.tokens.get(f.requestId);
        if (token !== undefined) {
          this.tokens.delete(f.requestId);
          this.taskEnds?.taskEnded(token, true, EMPTY, undefined);
          return;
        }
        const p = this.pending.get(f.requestId);
        if (p !== undefined && !p.waitsForDone) {
          this.pending.delete(f.requestId);
          p.resolve(f.taskId);
        }
        return;
      }
      case Kind.SUBMITTED_BATCH: {
        if (r.end - r.pos < 4) throw new ProtocolError("E_BAD_FRAME", "SUBMITTED_BATCH shorter than its request id");
        const sent = this.batches.get(r.view.getUint32(r.pos, true));
        if (sent !== undefined) {
          this.batches.delete(r.view.getUint32(r.pos, true));
          return this.batchAnswered(sent, r);
        }
        const f = readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX);
        const p = this.pending.get(f.requestId);
        if (p === undefined) return;
        this.pending.delete(f.requestId);
        p.resolve(f.outcomes);
        return;
      }
      case Kind.TASK_DONE: {
        const f = readTaskDone(r);
        const token = this.tokens.get(f.requestId);
        if (token !== undefined) {
          this.tokens.delete(f.requestId);
          this.taskEnds?.taskEnded(token, f.status === TaskStatus.OK, f.output, undefined);
          return;
        }
        const p = this.pending.get(f.requestId);
        if (p === undefined) return;
        this.pending.delete(f.requestId);
        const ok = f.status === TaskStatus.OK;
        const outcome: TaskOutcome = { taskId: f.taskId, ok, attempts: f.attempts, output: ok && f.output.length > 0 ? f.output.slice() : EMPTY };
        if (!ok) outcome.error = utf8.decode(f.output);
        p.resolve(outcome);
        return;
      }
      case Kind.STATS:
      case Kind.REPLY:
      case Kind.TASK_INFO: {
        const body = readControl<{ requestId: number }>(r);
        const p = this.pending.get(Number(body.requestId));
        if (p === undefined) return;
        this.pending.delete(Number(body.requestId));
        p.resolve(body);
        return;
      }
      case Kind.WELCOME:
        this.welcomed?.resolve(readControl<Welcome>(r));
        return;
      case Kind.ERROR:
        return this.onError(readControl<ErrorMessage>(r));
      case Kind.ROLE:
        // A coordinator tells every connection when it is promoted or steps down; not an error.
        // The failover client listens to move off a coordinator that became a backup.
        this.onRole?.(readControl<RoleChange>(r));
        return;
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from the server`);
    }
  }

  private onError(e: ErrorMessage): void {
    const code: ErrorCode = isErrorCode(e.code) ? e.code : "E_BAD_REQUEST";
    const error = new TaskError(code, String(e.message));
    if (e.requestId === 0) {
      // Connection-level: the server closes after this; requests still waiting fail with its code.
      this.closedReason = error.message;
      this.closedBy = error;
      this.welcomed?.reject(error);
      return;
    }
    const token = this.tokens.get(e.requestId);
    if (token !== undefined) {
      this.tokens.delete(e.requestId);
      return this.taskEnds?.taskEnded(token, false, EMPTY, code);
    }
    const batch = this.batches.get(e.requestId);
    if (batch !== undefined) {
      this.batches.delete(e.requestId);
      return this.batchFailed(batch, code);
    }
    const p = this.pending.get(e.requestId);
    if (p === undefined) return;
    this.pending.delete(e.requestId);
    p.reject(error);
  }

  onClose(_conn: Connection, reason: string): void {
    this.closedReason ??= reason;
    const error = this.closedBy ?? new TaskError("E_UNAVAILABLE", `connection lost: ${this.closedReason}`);
    this.welcomed?.reject(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const batch of batches) this.batchFailed(batch, error.code);
    const tokens = [...this.tokens.values()];
    this.tokens.clear();
    for (const token of tokens) this.taskEnds?.taskEnded(token, false, EMPTY, error.code);
  }
}
