// Which connection each worker is on (runtime only, never replicated), and the
// effects the scheduler has for workers: ASSIGNs, ABORTs, and closing a worker
// that missed its heartbeats. A worker that reconnects replaces its old
// connection and keeps its leases: its results may arrive on either.

import type { Logger } from "../cli/log.ts";
import type { Ready } from "../core/scheduler-types.ts";
import type { Task } from "../core/task.ts";
import type { Connection } from "../net/connection.ts";
import { writeAssign, writeControl } from "../protocol/codec.ts";
import { Kind, type Hello } from "../protocol/messages.ts";
import { parseWorkerHello, type WorkerShape } from "./request-shapes.ts";

export class WorkerLinks {
  private readonly conns = new Map<number, Connection>();

  constructor(private readonly workerSlotsMax: number, private readonly log: Logger) {}

  /** A worker's HELLO: this connection is where it is now. */
  joined(conn: Connection, hello: Hello): WorkerShape {
    const worker = parseWorkerHello(hello, this.workerSlotsMax);
    conn.state.workerId = worker.workerId;
    conn.state.slots = worker.slots;
    conn.state.tags = worker.tags;
    conn.state.types = worker.types;
    this.conns.set(worker.workerId, conn);
    this.log.info("worker joined", { workerId: worker.workerId, nodeId: conn.state.nodeId, slots: worker.slots, tags: worker.tags, types: worker.types ?? "any" });
    return worker;
  }

  /** The worker on this connection moved its credit here: kept for a registration to come. Its id, if it is the current connection. */
  credited(conn: Connection, slots: number): number | undefined {
    const workerId = conn.state.workerId as number | undefined;
    if (workerId === undefined || this.conns.get(workerId) !== conn) return undefined;
    conn.state.slots = slots;
    return workerId;
  }

  /** A connection closed: the worker id it was the current connection of, if any. */
  lost(conn: Connection, reason: string): number | undefined {
    const workerId = conn.state.workerId as number | undefined;
    if (workerId === undefined || this.conns.get(workerId) !== conn) return undefined;
    this.conns.delete(workerId);
    this.log.info("worker lost", { workerId, nodeId: conn.state.nodeId, reason });
    return workerId;
  }

  /** Every connected worker, as its HELLO described it (a new primary registers them). */
  *connected(): Iterable<WorkerShape> {
    for (const [workerId, conn] of this.conns) {
      yield { workerId, slots: conn.state.slots as number, tags: conn.state.tags as string[], types: conn.state.types as string[] | undefined };
    }
  }

  nodeId(workerId: number): string {
    return String(this.conns.get(workerId)?.state.nodeId ?? "");
  }

  /**
   * Sends what the scheduler decided for workers. A worker that is gone or too far
   * behind gets nothing: its lease expires and the task is retried.
   */
  send(ready: Ready, inputsOf: (task: Task) => Uint8Array[] | undefined, workerTimeoutMs: number): void {
    for (const [workerId, tasks] of ready.assignments) {
      const conn = this.conns.get(workerId);
      if (conn === undefined || !conn.writable()) continue;
      for (const t of tasks) writeAssign(conn.writer, t.id, t.attempt, t.timeoutMs, t.type, t.payload, t.dependsOn.length === 0 ? undefined : inputsOf(t));
      conn.queueFlush();
    }
    for (const abort of ready.aborts) {
      const conn = this.conns.get(abort.workerId);
      if (conn === undefined || !conn.writable()) continue;
      writeControl(conn.writer, Kind.ABORT, { taskId: abort.taskId, attempt: abort.attempt });
      conn.queueFlush();
    }
    for (const workerId of ready.lostWorkers) {
      this.log.warn("worker timed out", { workerId, timeoutMs: workerTimeoutMs });
      this.conns.get(workerId)?.close("worker missed its heartbeats");
    }
  }
}
