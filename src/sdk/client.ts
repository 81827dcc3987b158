// The TypeScript client library: submit tasks, wait for their outcome, query
// status and stats. The `client` load generator is built on it. One TCP
// connection carries any number of pipelined requests; writes are batched.
// How a list of tasks is cut into batches is in batch-submit.ts.

import { decode, encode } from "@msgpack/msgpack";
import { Connection, DEFAULT_NET_LIMITS, type ConnectionHandler, type NetLimits } from "../net/connection.ts";
import { dial, parseHostPort, type HostPort } from "../net/endpoints.ts";
import type { ClientTls } from "../net/tls.ts";
import { readControl, readSubmitted, readTaskDone, writeControl, writeSubmit, type Reader } from "../protocol/codec.ts";
import { readSubmittedBatch, writeSubmitBatch } from "../protocol/batch-codec.ts";
import { isErrorCode, ProtocolError, type ErrorCode } from "../protocol/errors.ts";
import { SchedulerError, SchedulerError as TaskError } from "./errors.ts";
import { builtinPayloadProblem } from "../worker/builtin-tasks.ts";
import { checkEventBatch, checkFilter, type EventFilter, type ShardPosition } from "../protocol/events.ts";
import { Subscriptions, type Subscription, type SubscriptionHandlers } from "./subscriptions.ts";
import { checkSubmitOptions, extrasOf, WORKFLOW_TASK_FIELDS, type SubmitOptions, type WorkflowTask } from "./submit-options.ts";
import { TaskStream, type TaskEnds } from "./task-stream.ts";
import { acceptedIds, submitInBatches, type BatchTask } from "./batch-submit.ts";
import {
  Kind, PROTOCOL_VERSION, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_NOTIFY, TaskStatus, type BatchItemOutcome, type SubmitFields, type WorkflowNode,
  type ClusterStats, type CoordinatorStats, type ErrorMessage, type Hello, type RoleChange, type TaskInfo, type Welcome,
} from "../protocol/messages.ts";

export {
  BACKOFF_FIELDS, checkSubmitOptions, SUBMIT_OPTION_FIELDS, unknownField, WORKFLOW_TASK_FIELDS, type SubmitOptions, type WorkflowTask,
} from "./submit-options.ts";
export type { TaskEnds } from "./task-stream.ts";
export { BATCH_PAYLOAD_BYTES_MAX, BatchSubmitError, type BatchTask } from "./batch-submit.ts";

export interface TaskOutcome {
  taskId: number;
  ok: boolean;
  attempts: number;
  /** ok: the handler's result bytes (msgpack for built-in types); failed: empty. */
  output: Uint8Array;
  /** failed: the last attempt's code (E_HANDLER, E_TIMEOUT, E_DEADLINE, E_CANCELLED, ...). */
  code?: ErrorCode;
  /** failed: the last attempt's error, "code: message". */
  error?: string;
  /** failed: the last attempt's message alone. */
  message?: string;
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

export type { BatchItemOutcome };

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

/** A TASK_DONE's failure, msgpack {code, message} (a code this SDK does not know reads as E_HANDLER). */
function failureOf(output: Uint8Array): { code: ErrorCode; message: string; error: string } {
  const value = decodeResult(output) as { code?: unknown; message?: unknown } | undefined;
  const code = isErrorCode(value?.code) ? value.code : "E_HANDLER";
  const message = typeof value?.message === "string" ? value.message : utf8.decode(output);
  return { code, message, error: `${code}: ${message}` };
}

/** Connects to a router or coordinator ("host:port") and completes the handshake. */
export function connect(address: string | HostPort, options: ClientOptions = {}): Promise<SchedulerClient> {
  return SchedulerClient.connect(address, options);
}
export class SchedulerClient implements ConnectionHandler {
  private conn: Connection | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly subscriptions = new Subscriptions();
  /** sendTasks()'s tasks: numbers, not promises (task-stream.ts). */
  private readonly stream = new TaskStream(() => this.takeRequestId());

  /** Where sendTasks()'s tasks end; set before the first call. */
  set taskEnds(ends: TaskEnds | undefined) {
    this.stream.ends = ends;
  }
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
    return acceptedIds(await this.submitBatch(tasks));
  }

  /**
   * Submits many tasks as SUBMIT_BATCH messages and resolves with each task's
   * outcome in order: accepted with its id, or refused with a code (a bad
   * option is refused here, the rest by the server, task by task). Rejects only
   * when a whole batch failed (the connection, E_NOT_PRIMARY, ...): then no
   * task of it was acknowledged, and a retry under the same idempotency keys is safe.
   */
  submitBatch(tasks: BatchTask[]): Promise<BatchItemOutcome[]> {
    return submitInBatches(tasks, (t) => this.submitFields(t.type, t.payload, t.options ?? {}, false), (fields) => this.sendBatch(fields));
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
    this.stream.send(conn.writer, count, fill, waitForEnd, asBatch);
    conn.queueFlush();
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

  /**
   * Streams task events matching `filter` (events.ts resumes them across connections).
   * `after` absent: from now; given, after those positions, and from the oldest event
   * held on shards it does not name. A bad filter or a closed connection ends it at once.
   */
  subscribe(filter: EventFilter, after: ShardPosition[] | undefined, handlers: SubscriptionHandlers): Subscription {
    const requestId = this.takeRequestId();
    const subscription = { requestId, unsubscribe: () => this.unsubscribe(requestId) };
    try {
      const conn = this.usable();
      writeControl(conn.writer, Kind.SUBSCRIBE, { requestId, filter: checkFilter(filter), ...(after === undefined ? {} : { after }) });
      conn.queueFlush();
    } catch (err) {
      const e = err instanceof TaskError ? err : new TaskError(err instanceof ProtocolError ? err.code : "E_BAD_REQUEST", (err as Error).message);
      queueMicrotask(() => handlers.onEnd(e));
      return subscription;
    }
    this.subscriptions.add(requestId, handlers);
    return subscription;
  }

  private unsubscribe(requestId: number): void {
    if (!this.subscriptions.has(requestId)) return;
    this.subscriptions.remove(requestId);
    if (this.closedReason !== undefined || this.conn === undefined) return;
    writeControl(this.conn.writer, Kind.UNSUBSCRIBE, { requestId });
    this.conn.queueFlush();
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
        if (this.stream.answered(f.requestId, true, EMPTY)) return;
        const p = this.pending.get(f.requestId);
        if (p !== undefined && !p.waitsForDone) {
          this.pending.delete(f.requestId);
          p.resolve(f.taskId);
        }
        return;
      }
      case Kind.SUBMITTED_BATCH: {
        if (this.stream.batchAnswered(r)) return;
        const f = readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX);
        const p = this.pending.get(f.requestId);
        if (p === undefined) return;
        this.pending.delete(f.requestId);
        p.resolve(f.outcomes);
        return;
      }
      case Kind.TASK_DONE: {
        const f = readTaskDone(r);
        if (this.stream.answered(f.requestId, f.status === TaskStatus.OK, f.output)) return;
        const p = this.pending.get(f.requestId);
        if (p === undefined) return;
        this.pending.delete(f.requestId);
        const ok = f.status === TaskStatus.OK;
        const outcome: TaskOutcome = { taskId: f.taskId, ok, attempts: f.attempts, output: ok && f.output.length > 0 ? f.output.slice() : EMPTY };
        if (!ok) Object.assign(outcome, failureOf(f.output));
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
      case Kind.EVENTS:
        return this.subscriptions.batch(checkEventBatch(readControl<Record<string, unknown>>(r)));
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
    if (this.subscriptions.ended(e.requestId, error)) return;
    if (this.stream.refused(e.requestId, code)) return;
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
    this.subscriptions.endAll(error);
    this.stream.closed(error.code);
  }
}
