// The TypeScript client library: submit tasks, wait for their outcome, query
// status and stats. The `client` load generator is built on it. One TCP
// connection carries any number of pipelined requests; writes are batched.

import { encode } from "@msgpack/msgpack";
import { Connection, DEFAULT_NET_LIMITS, type ConnectionHandler, type NetLimits } from "../net/connection.ts";
import { dial, parseHostPort, type HostPort } from "../net/endpoints.ts";
import { readControl, readSubmitted, readTaskDone, writeControl, writeSubmit, type Reader } from "../protocol/codec.ts";
import { isErrorCode, ProtocolError, type ErrorCode } from "../protocol/errors.ts";
import {
  Kind, PROTOCOL_VERSION, SUBMIT_FLAG_NOTIFY, TaskStatus,
  type ClusterStats, type CoordinatorStats, type ErrorMessage, type Hello, type TaskInfo, type Welcome,
} from "../protocol/messages.ts";

export interface SubmitOptions {
  /** 0 (highest) to 255. Default 100. */
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  /** A retried submission with the same key returns the original task. */
  idempotencyKey?: string;
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

/** A request the cluster refused, with its code (E_QUEUE_FULL, E_UNKNOWN_TASK, ...). */
export class TaskError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "TaskError";
  }
}

export interface ClientOptions {
  token?: string;
  nodeId?: string;
  limits?: NetLimits;
}

export const DEFAULT_PRIORITY = 100;

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  /** run(): resolve on TASK_DONE, not on SUBMITTED. */
  waitsForDone: boolean;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();

export class SchedulerClient implements ConnectionHandler {
  private conn: Connection | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextRequestId = 1;
  private welcome: Welcome | undefined;
  private welcomed: { resolve(w: Welcome): void; reject(e: Error): void } | undefined;
  private closedReason: string | undefined;

  /** Connects and completes the handshake. */
  static async connect(address: string | HostPort, options: ClientOptions = {}): Promise<SchedulerClient> {
    const target = typeof address === "string" ? parseHostPort(address) : address;
    const client = new SchedulerClient();
    const conn = await dial(target.host, target.port, client, options.limits ?? DEFAULT_NET_LIMITS);
    client.conn = conn;
    const hello: Hello = { role: "client", version: PROTOCOL_VERSION, nodeId: options.nodeId ?? `client-${process.pid}`, token: options.token };
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

  /** Submits a task; resolves with its id once the coordinator has accepted it. */
  submit(type: string, payload: unknown, options: SubmitOptions = {}): Promise<number> {
    return this.send(type, payload, options, false) as Promise<number>;
  }

  /** Submits a task and resolves when it has ended (completed, or failed for good). */
  run(type: string, payload: unknown, options: SubmitOptions = {}): Promise<TaskOutcome> {
    return this.send(type, payload, options, true) as Promise<TaskOutcome>;
  }

  task(taskId: number): Promise<TaskInfo> {
    return this.control(Kind.TASK_QUERY, { taskId }) as Promise<TaskInfo>;
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
    const conn = this.usable();
    const requestId = this.takeRequestId();
    const bytes = payload instanceof Uint8Array ? payload : payload === undefined ? EMPTY : encode(payload);
    const promise = new Promise((resolve, reject) => this.pending.set(requestId, { resolve, reject, waitsForDone }));
    try {
      writeSubmit(conn.writer, {
        requestId,
        priority: options.priority ?? DEFAULT_PRIORITY,
        flags: waitsForDone ? SUBMIT_FLAG_NOTIFY : 0,
        maxAttempts: options.maxAttempts ?? 0,
        timeoutMs: options.timeoutMs ?? 0,
        type,
        idempotencyKey: options.idempotencyKey ?? "",
        payload: bytes,
      });
    } catch (err) {
      conn.writer.abandon();
      this.pending.delete(requestId);
      const code = err instanceof ProtocolError ? err.code : "E_BAD_REQUEST";
      return Promise.reject(new TaskError(code, (err as Error).message));
    }
    conn.queueFlush();
    return promise;
  }

  private control(kind: number, body: Record<string, unknown>): Promise<unknown> {
    const conn = this.usable();
    const requestId = this.takeRequestId();
    const promise = new Promise((resolve, reject) => this.pending.set(requestId, { resolve, reject, waitsForDone: false }));
    writeControl(conn.writer, kind, { ...body, requestId });
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
        const p = this.pending.get(f.requestId);
        if (p !== undefined && !p.waitsForDone) {
          this.pending.delete(f.requestId);
          p.resolve(f.taskId);
        }
        return;
      }
      case Kind.TASK_DONE: {
        const f = readTaskDone(r);
        const p = this.pending.get(f.requestId);
        if (p === undefined) return;
        this.pending.delete(f.requestId);
        const ok = f.status === TaskStatus.OK;
        const outcome: TaskOutcome = { taskId: f.taskId, ok, attempts: f.attempts, output: ok ? f.output.slice() : EMPTY };
        if (!ok) outcome.error = utf8.decode(f.output);
        p.resolve(outcome);
        return;
      }
      case Kind.STATS:
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
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from the server`);
    }
  }

  private onError(e: ErrorMessage): void {
    const code: ErrorCode = isErrorCode(e.code) ? e.code : "E_BAD_REQUEST";
    const error = new TaskError(code, String(e.message));
    if (e.requestId === 0) {
      // Connection-level: the server closes after this.
      this.closedReason = error.message;
      this.welcomed?.reject(error);
      return;
    }
    const p = this.pending.get(e.requestId);
    if (p === undefined) return;
    this.pending.delete(e.requestId);
    p.reject(error);
  }

  onClose(_conn: Connection, reason: string): void {
    this.closedReason ??= reason;
    const error = new TaskError("E_UNAVAILABLE", `connection lost: ${this.closedReason}`);
    this.welcomed?.reject(error);
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
  }
}
