// What workers send a coordinator, besides their HELLO: results, heartbeats,
// drain notices, credit changes and progress. The primary logs what changes
// state (a backup has no leases to settle: a worker resends to the primary it
// finds); progress is soft state, never logged.

import type { Logger } from "../cli/log.ts";
import type { HeldHeartbeat } from "../core/held-heartbeats.ts";
import type { Scheduler } from "../core/scheduler.ts";
import type { Connection } from "../net/connection.ts";
import { readControl, type Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind, type Heartbeat, type Role } from "../protocol/messages.ts";
import { encodeWorkerCredit, Ev } from "./event-log.ts";
import { workerCredit } from "./request-shapes.ts";
import type { TaskObservations } from "./task-observations.ts";
import type { WorkerLinks } from "./worker-links.ts";

/** What the worker inputs need of their coordinator. */
export interface WorkerInputPort {
  isPrimary(): boolean;
  scheduler(): Scheduler;
  /** Logs one entry and applies it (the only way the primary changes state). */
  record(type: number, subject: number, body?: Uint8Array, bodyStart?: number, bodyEnd?: number): void;
  /** A heartbeat, held until something reads what it changes (held-heartbeats.ts). */
  heartbeat(beat: HeldHeartbeat): void;
}

const KINDS: ReadonlySet<number> = new Set([Kind.RESULT, Kind.HEARTBEAT, Kind.DRAIN, Kind.CREDIT, Kind.PROGRESS]);

export class WorkerInputs {
  constructor(
    private readonly port: WorkerInputPort,
    private readonly workers: WorkerLinks,
    private readonly observed: TaskObservations,
    private readonly workerSlotsMax: number,
    private readonly log: Logger,
  ) {}

  handles(kind: number): boolean {
    return KINDS.has(kind);
  }

  message(conn: Connection, role: Role, kind: number, r: Reader): void {
    const primary = this.port.isPrimary();
    const scheduler = this.port.scheduler();
    switch (kind) {
      case Kind.RESULT:
        if (role !== "worker") throw new ProtocolError("E_BAD_REQUEST", "only workers send RESULT");
        // A backup has no leases to settle; the worker resends to the primary it finds.
        if (primary) this.port.record(Ev.RESULT, conn.state.workerId as number, r.bytes, r.pos, r.end);
        return;
      case Kind.HEARTBEAT: {
        const beat = readControl<Partial<Heartbeat>>(r);
        const workerId = conn.state.workerId as number;
        if (!primary || scheduler.worker(workerId) === undefined) return;
        const running = Array.isArray(beat.taskIds) ? beat.taskIds.slice(0, this.workerSlotsMax).map(Number).filter(Number.isFinite) : [];
        return this.port.heartbeat({ workerId, at: Date.now(), running });
      }
      case Kind.DRAIN: {
        readControl(r);
        const workerId = conn.state.workerId as number;
        this.log.info("worker draining", { workerId, nodeId: conn.state.nodeId });
        if (primary && scheduler.worker(workerId) !== undefined) this.port.record(Ev.WORKER_DRAINING, workerId);
        return;
      }
      case Kind.CREDIT: {
        if (role !== "worker") throw new ProtocolError("E_BAD_REQUEST", "only workers send CREDIT");
        const slots = workerCredit(readControl<{ slots?: unknown }>(r).slots, this.workerSlotsMax, "E_BAD_REQUEST");
        const workerId = this.workers.credited(conn, slots);
        // Every replica keeps it on the connection (a new primary registers the worker with it); the primary logs it.
        if (primary && workerId !== undefined && scheduler.worker(workerId)?.slots !== slots) this.port.record(Ev.WORKER_CREDIT, workerId, encodeWorkerCredit(slots));
        return;
      }
      case Kind.PROGRESS: {
        // Soft, runtime-only state: not logged, lost on failover, shown in task status.
        const p = readControl<{ taskId?: unknown; attempt?: unknown; progress?: unknown }>(r);
        return this.observed.reported(scheduler.task(Number(p.taskId)), Number(p.attempt), p.progress);
      }
    }
  }
}
