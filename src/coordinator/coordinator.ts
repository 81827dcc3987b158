// The coordinator process shell: TCP in, the pure Scheduler in the middle,
// effects out. Every socket read is one batch: its messages go into the
// scheduler, then one dispatch, then the resulting ASSIGN / TASK_DONE messages
// are written to their connections (each flushed once per tick).

import type { Logger } from "../cli/log.ts";
import { Scheduler, type SchedulerOptions } from "../core/scheduler.ts";
import type { Task } from "../core/task.ts";
import { Connection, type ConnectionHandler, type NetLimits } from "../net/connection.ts";
import { listen, type Listener } from "../net/endpoints.ts";
import { RecentLatency } from "./recent-latency.ts";
import { readControl, readResult, readSubmit, writeAssign, writeControl, writeSubmitted, writeTaskDone, type Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  Kind, PROTOCOL_VERSION, ROLES, SUBMIT_FLAG_NOTIFY, TaskStatus,
  type CoordinatorStats, type Hello, type Role, type TaskInfo, type Welcome, type WorkerInfo,
} from "../protocol/messages.ts";

export interface CoordinatorConfig {
  host: string;
  port: number;
  nodeId: string;
  scheduler: SchedulerOptions;
  limits: NetLimits;
  /** How often leases and worker liveness are checked. */
  tickMs: number;
  /** Largest worker credit accepted in a HELLO. */
  workerSlotsMax: number;
}

const EMPTY = new Uint8Array(0);
/** Stats report the latency of tasks finished within about this long. */
const LATENCY_WINDOW_MS = 5_000;
const utf8 = new TextEncoder();

export class Coordinator implements ConnectionHandler {
  readonly scheduler: Scheduler;
  private listener: Listener | undefined;
  private readonly connections = new Map<number, Connection>();
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private readonly startedAt = Date.now();
  private readonly epoch = 1;
  private readonly latency = new RecentLatency(LATENCY_WINDOW_MS);

  constructor(
    readonly config: CoordinatorConfig,
    private readonly log: Logger,
  ) {
    this.scheduler = new Scheduler(config.scheduler);
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  start(): void {
    this.listener = listen(this.config.host, this.config.port, this, this.config.limits, (conn) => this.connections.set(conn.id, conn));
    this.tickTimer = setInterval(() => {
      this.scheduler.tick(Date.now());
      this.pump();
    }, this.config.tickMs);
    this.log.info("listening", { host: this.config.host, port: this.port, shard: this.config.scheduler.shard, nodeId: this.config.nodeId });
  }

  stop(): void {
    clearInterval(this.tickTimer);
    this.listener?.stop();
    for (const conn of this.connections.values()) conn.close("coordinator stopping");
  }

  // ------------------------------------------------------------ messages

  onMessage(conn: Connection, kind: number, r: Reader): void {
    const role = conn.state.role as Role | undefined;
    if (role === undefined) {
      if (kind !== Kind.HELLO) throw new ProtocolError("E_BAD_HELLO", `first message must be HELLO, got kind ${kind}`);
      this.hello(conn, readControl<Hello>(r));
      return;
    }
    switch (kind) {
      case Kind.SUBMIT:
        return this.submit(conn, r);
      case Kind.RESULT: {
        if (role !== "worker") throw new ProtocolError("E_BAD_REQUEST", "only workers send RESULT");
        const f = readResult(r);
        const ok = f.status === TaskStatus.OK;
        this.scheduler.result(conn.id, f.taskId, f.attempt, ok, f.output.length === 0 ? EMPTY : f.output.slice(), Date.now());
        return;
      }
      case Kind.HEARTBEAT:
        readControl(r);
        this.scheduler.heartbeat(conn.id, Date.now());
        return;
      case Kind.STATS_REQUEST: {
        const req = readControl<{ requestId?: unknown }>(r);
        writeControl(conn.writer, Kind.STATS, this.stats(Number(req.requestId) || 0));
        conn.queueFlush();
        return;
      }
      case Kind.TASK_QUERY:
        return this.taskQuery(conn, readControl<{ requestId?: unknown; taskId?: unknown }>(r));
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from a ${role}`);
    }
  }

  onReadEnd(): void {
    this.pump();
  }

  onClose(conn: Connection, reason: string): void {
    this.connections.delete(conn.id);
    if (conn.state.role === "worker") {
      this.log.info("worker lost", { workerId: conn.id, nodeId: conn.state.nodeId, reason });
      this.scheduler.workerLeft(conn.id, Date.now());
      this.pump();
    }
  }

  private hello(conn: Connection, hello: Hello): void {
    if (hello.version !== PROTOCOL_VERSION) {
      throw new ProtocolError("E_BAD_VERSION", `peer speaks protocol version ${hello.version}; this coordinator speaks ${PROTOCOL_VERSION}`);
    }
    if (!ROLES.includes(hello.role)) throw new ProtocolError("E_BAD_HELLO", `unknown role "${hello.role}"`);
    conn.state.role = hello.role;
    conn.state.nodeId = String(hello.nodeId ?? "");
    if (hello.role === "worker") {
      const slots = Number(hello.slots);
      if (!Number.isInteger(slots) || slots < 1 || slots > this.config.workerSlotsMax) {
        throw new ProtocolError("E_BAD_HELLO", `worker slots must be an integer from 1 to ${this.config.workerSlotsMax}`);
      }
      const tags = Array.isArray(hello.tags) ? hello.tags.map(String) : [];
      this.scheduler.workerJoined(conn.id, slots, tags, Date.now());
      this.log.info("worker joined", { workerId: conn.id, nodeId: conn.state.nodeId, slots, tags });
    }
    const welcome: Welcome = {
      role: "coordinator", version: PROTOCOL_VERSION, nodeId: this.config.nodeId,
      shard: this.config.scheduler.shard, epoch: this.epoch, primary: true,
    };
    writeControl(conn.writer, Kind.WELCOME, welcome);
    conn.queueFlush();
  }

  private submit(conn: Connection, r: Reader): void {
    const f = readSubmit(r);
    const outcome = this.scheduler.submit({
      type: f.type,
      payload: f.payload.length === 0 ? EMPTY : f.payload.slice(),
      priority: f.priority,
      maxAttempts: f.maxAttempts,
      timeoutMs: f.timeoutMs,
      idempotencyKey: f.idempotencyKey,
      watcher: f.flags & SUBMIT_FLAG_NOTIFY ? conn.id : 0,
      watchRequestId: f.requestId,
    }, Date.now());
    if (!conn.writable()) return;
    if (outcome.ok) writeSubmitted(conn.writer, f.requestId, outcome.taskId);
    else conn.sendError(f.requestId, outcome.code, outcome.message);
    conn.queueFlush();
  }

  private taskQuery(conn: Connection, req: { requestId?: unknown; taskId?: unknown }): void {
    const requestId = Number(req.requestId) || 0;
    const task = this.scheduler.task(Number(req.taskId));
    if (task === undefined) {
      conn.sendError(requestId, "E_UNKNOWN_TASK", `no task ${String(req.taskId)} on shard ${this.config.scheduler.shard} (never submitted, or evicted after retention)`);
      return;
    }
    const info: TaskInfo = {
      requestId, taskId: task.id, type: task.type, state: task.state, attempt: task.attempt,
      maxAttempts: task.maxAttempts, priority: task.priority, output: task.output, error: task.errors.at(-1),
    };
    writeControl(conn.writer, Kind.TASK_INFO, info);
    conn.queueFlush();
  }

  // ------------------------------------------------------------ effects

  /** Runs the scheduler's dispatch and writes out everything it decided. */
  private pump(): void {
    const now = Date.now();
    this.scheduler.dispatch(now);
    const ready = this.scheduler.takeReady();
    for (const [workerId, tasks] of ready.assignments) {
      const conn = this.connections.get(workerId);
      if (conn === undefined || !conn.writable()) continue; // its close event requeues the leases
      for (const t of tasks) writeAssign(conn.writer, t.id, t.attempt, t.timeoutMs, t.type, t.payload);
      conn.queueFlush();
    }
    for (const task of ready.finished) {
      this.latency.record(now, now - task.submittedAt);
      if (task.watcher !== 0) this.notify(task);
    }
    for (const workerId of ready.lostWorkers) {
      this.log.warn("worker timed out", { workerId, timeoutMs: this.config.scheduler.workerTimeoutMs });
      this.connections.get(workerId)?.close("worker missed its heartbeats");
    }
  }

  private notify(task: Task): void {
    const conn = this.connections.get(task.watcher);
    if (conn === undefined || !conn.writable()) return;
    const ok = task.state === "completed";
    const output = ok ? (task.output ?? EMPTY) : utf8.encode(task.errors.at(-1) ?? "failed");
    writeTaskDone(conn.writer, task.watchRequestId, task.id, ok ? TaskStatus.OK : TaskStatus.FAILED, task.attempt, output);
    conn.queueFlush();
  }

  stats(requestId: number): CoordinatorStats {
    const now = Date.now();
    const c = this.scheduler.counters;
    const workers: WorkerInfo[] = [];
    for (const w of this.scheduler.allWorkers()) {
      const conn = this.connections.get(w.id);
      workers.push({
        id: w.id, nodeId: String(conn?.state.nodeId ?? ""), slots: w.slots, free: w.free,
        done: w.done, failed: w.failed, heartbeatAgeMs: now - w.lastSeenAt, tags: [...w.tags],
      });
    }
    return {
      requestId, nodeId: this.config.nodeId, shard: this.config.scheduler.shard, epoch: this.epoch, primary: true,
      uptimeMs: now - this.startedAt, queued: this.scheduler.queuedCount, leased: this.scheduler.leasedTotal,
      submitted: c.submitted, completed: c.completed, failed: c.failed, retried: c.retried,
      rejectedQueueFull: c.rejectedQueueFull, retained: this.scheduler.retainedCount,
      latencyMs: this.latency.summary(now), workers,
    };
  }
}
