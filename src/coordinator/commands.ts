// The requests a primary answers on behalf of clients and routers: submit,
// cancel, watch, workflow, a foreign parent's end, DLQ requeue and purge (each
// checked, logged as an entry, and answered once that entry is committed), and
// task status queries. Requests come as msgpack maps, so each field is checked
// here; a malformed one is answered on its own request, never by closing the
// connection (it may be a router's, carrying other clients' requests).

import { encode } from "@msgpack/msgpack";
import type { Scheduler, SubmitOutcome, WorkflowOutcome } from "../core/scheduler.ts";
import type { Connection } from "../net/connection.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { SUBMIT_FLAGS_AT, submitPayloadBytes, writeControl, type Reader } from "../protocol/codec.ts";
import { peekSubmitBatchRequestId, readSubmitBatchSpansOr } from "../protocol/batch-codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_NOTIFY, type BatchItemOutcome } from "../protocol/messages.ts";
import { encodeParentEnded, Ev, FOREIGN_END_STATES, type ApplyResult } from "./event-log.ts";
import { DLQ_PAGE_MAX, FOREIGN_WAITS_PAGE_MAX, isWorkflowNode, taskInfo, WORKFLOW_NODES_MAX } from "./request-shapes.ts";

const EMPTY = new Uint8Array(0);

/** What the commands need of their coordinator. */
export interface CommandPort {
  isPrimary(): boolean;
  refuseNotPrimary(conn: Connection, requestId: number): void;
  /** Logs one entry (body[bodyStart, bodyEnd)) and applies it to the scheduler (the only way state changes). */
  record(type: number, subject: number, body?: Uint8Array, bodyStart?: number, bodyEnd?: number): ApplyResult;
  /** Sends this REPLY once the entry just recorded is committed. */
  replyWhenCommitted(conn: Connection, requestId: number, body: Record<string, unknown>): void;
  /** Sends SUBMITTED once the entry just recorded is committed (`quiet`: nothing, its TASK_DONE says it). */
  submittedWhenCommitted(conn: Connection, requestId: number, taskId: number, quiet: boolean): void;
  /** Sends SUBMITTED_BATCH once every entry recorded so far (the batch's last included) is committed. */
  batchSubmittedWhenCommitted(conn: Connection, requestId: number, outcomes: BatchItemOutcome[]): void;
  /** Set while a graceful stop hands over: new submissions are refused (retryable). */
  handingOver(): string | undefined;
  /** The scheduler as it is now (a backup's is replaced by each snapshot). */
  scheduler(): Scheduler;
  /** The last progress a worker reported for a running task. */
  progressOf(taskId: number): number | undefined;
}

export class Commands {
  constructor(
    private readonly port: CommandPort,
    private readonly shard: number,
    private readonly payloadBytesMax: number,
  ) {}

  /** SUBMIT: logged as an entry, acknowledged once it is committed. Malformed: answered on this request alone. */
  submit(conn: Connection, r: Reader): void {
    if (r.end - r.pos < 4) throw new ProtocolError("E_BAD_FRAME", "SUBMIT shorter than its request id");
    const requestId = r.view.getUint32(r.pos, true);
    if (!this.port.isPrimary()) return this.port.refuseNotPrimary(conn, requestId);
    const handingOver = this.port.handingOver();
    if (handingOver !== undefined) return conn.sendError(requestId, "E_SHUTTING_DOWN", handingOver);
    let outcome: SubmitOutcome;
    try {
      const payloadBytes = submitPayloadBytes(r);
      if (payloadBytes > this.payloadBytesMax) return this.refusePayload(conn, requestId, payloadBytes);
      outcome = this.port.record(Ev.SUBMIT, conn.id, r.bytes, r.pos, r.end) as SubmitOutcome;
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return conn.sendError(requestId, err.code, err.message);
    }
    // A refusal changed nothing but a counter; it needs no replication before the client hears it.
    if (!outcome.ok) return conn.sendError(requestId, outcome.code, outcome.message);
    // A submitter that asked to be told when the task ends (notify) hears once, its TASK_DONE (which says it was accepted too).
    const quiet = (r.bytes[r.pos + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_NOTIFY) !== 0;
    this.port.submittedWhenCommitted(conn, requestId, outcome.taskId, quiet);
  }

  /**
   * SUBMIT_BATCH: each task is logged as its own SUBMIT entry, exactly as if it
   * came alone (so backups, the WAL and recovery need nothing new, and an
   * idempotency key repeated inside the batch finds the task its first use
   * made), but the batch has one acknowledgement, held until its last entry is
   * committed: every task it reports accepted is replicated (and on disk) by
   * then. A task refused (bad field, payload too large, queue full) is refused
   * in its slot of the answer; the others go ahead. A batch whose framing is
   * broken is refused whole, on its own request.
   */
  submitBatch(conn: Connection, r: Reader): void {
    const requestId = peekSubmitBatchRequestId(r);
    if (!this.port.isPrimary()) return this.port.refuseNotPrimary(conn, requestId);
    const handingOver = this.port.handingOver();
    if (handingOver !== undefined) return conn.sendError(requestId, "E_SHUTTING_DOWN", handingOver);
    const spans = readSubmitBatchSpansOr(r, SUBMIT_BATCH_TASKS_MAX, (code, message) => conn.sendError(requestId, code, message));
    if (spans === undefined) return;
    const outcomes: BatchItemOutcome[] = new Array(spans.starts.length);
    for (let i = 0; i < spans.starts.length; i++) {
      outcomes[i] = this.batchTask(conn, r.bytes, spans.starts[i]!, spans.ends[i]!, r);
    }
    this.port.batchSubmittedWhenCommitted(conn, requestId, outcomes);
  }

  /** One task of a batch, body[start, end): logged, or refused in its slot. */
  private batchTask(conn: Connection, body: Uint8Array, start: number, end: number, r: Reader): BatchItemOutcome {
    const batchEnd = r.end;
    r.pos = start;
    r.end = end;
    try {
      const payloadBytes = submitPayloadBytes(r);
      if (payloadBytes > this.payloadBytesMax) {
        return { ok: false, code: "E_TOO_LARGE", message: `the payload is ${payloadBytes} bytes; this coordinator accepts at most ${this.payloadBytesMax} (--payload-bytes-max)` };
      }
      const outcome = this.port.record(Ev.SUBMIT, conn.id, body, start, end) as SubmitOutcome;
      if (!outcome.ok) return { ok: false, code: outcome.code, message: outcome.message };
      // Its TASK_DONE will come on this connection (notify): not idle meanwhile (holdDone ends the wait).
      if ((body[start + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_NOTIFY) !== 0) conn.idle.startWait();
      return { ok: true, taskId: outcome.taskId };
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      return { ok: false, code: err.code, message: err.message };
    } finally {
      r.end = batchEnd;
    }
  }

  /**
   * CANCEL, WATCH, WORKFLOW, PARENT_ENDED, DLQ_REQUEUE or DLQ_PURGE. A
   * malformed request (ProtocolError) is answered on that request alone and
   * the connection stays open: it may be a router's, carrying many clients
   * whose requests are fine.
   */
  answer(conn: Connection, kind: number, q: Record<string, unknown>): void {
    try {
      this.command(conn, kind, q);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      conn.sendError(Number(q.requestId) || 0, err.code, err.message);
    }
  }

  /** DLQ_LIST: one page of the dead-letter queue (any replica answers: it is a read). */
  deadLetters(conn: Connection, q: { requestId?: unknown; offset?: unknown; limit?: unknown }): void {
    const offset = Math.max(0, Number(q.offset) || 0);
    const limit = Math.min(DLQ_PAGE_MAX, Math.max(1, Number(q.limit) || 100));
    const scheduler = this.port.scheduler();
    const tasks = scheduler.deadLetters(offset, limit).map((t) => taskInfo(0, t));
    writeControl(conn.writer, Kind.REPLY, { requestId: Number(q.requestId) || 0, tasks, total: scheduler.dlqCount });
    conn.queueFlush();
  }

  /** FOREIGN_WAITS: parents in other shards that tasks here wait on (a router settles them); a backup has none to report. */
  foreignWaits(conn: Connection, q: { requestId?: unknown }): void {
    const parentIds = this.port.isPrimary() ? this.port.scheduler().foreignWaits().slice(0, FOREIGN_WAITS_PAGE_MAX) : [];
    writeControl(conn.writer, Kind.REPLY, { requestId: Number(q.requestId) || 0, parentIds });
    conn.queueFlush();
  }

  private command(conn: Connection, kind: number, q: Record<string, unknown>): void {
    const requestId = Number(q.requestId) || 0;
    if (!this.port.isPrimary()) return this.port.refuseNotPrimary(conn, requestId);
    const taskId = Number(q.taskId);
    const needsTask = kind === Kind.CANCEL || kind === Kind.WATCH || kind === Kind.DLQ_REQUEUE || kind === Kind.PARENT_ENDED;
    if (needsTask && !Number.isSafeInteger(taskId)) return conn.sendError(requestId, "E_BAD_REQUEST", "taskId must be an integer");
    let body: Record<string, unknown>;
    switch (kind) {
      case Kind.CANCEL: {
        const result = this.port.record(Ev.CANCEL, taskId) as { state?: string };
        if (result.state === undefined) return this.unknownTask(conn, requestId, taskId);
        body = { taskId, state: result.state };
        break;
      }
      case Kind.WATCH: {
        const w = new ByteWriter(12);
        w.u32(requestId);
        w.f64(taskId);
        const result = this.port.record(Ev.WATCH, conn.id, w.toBytes()) as { count: number };
        if (result.count === 0) return this.unknownTask(conn, requestId, taskId);
        conn.idle.startWait(); // not idle until that TASK_DONE (the coordinator's holdDone ends the wait)
        return; // the answer is a TASK_DONE when the task ends
      }
      case Kind.WORKFLOW: {
        if (!Array.isArray(q.nodes)) return conn.sendError(requestId, "E_BAD_REQUEST", "a workflow needs nodes: an array of tasks");
        if (q.nodes.length > WORKFLOW_NODES_MAX) return conn.sendError(requestId, "E_TOO_LARGE", `a workflow holds at most ${WORKFLOW_NODES_MAX} tasks`);
        if (!q.nodes.every(isWorkflowNode)) return conn.sendError(requestId, "E_BAD_REQUEST", "each workflow node needs a string type, tags of strings, and dependsOn entries {node: index} or {taskId: id}");
        const large = q.nodes.findIndex((n) => (n.payload?.length ?? 0) > this.payloadBytesMax);
        if (large >= 0) return this.refusePayload(conn, requestId, q.nodes[large]!.payload!.length, `workflow task ${large}'s payload`);
        const outcome = this.port.record(Ev.WORKFLOW, 0, encode(q.nodes)) as WorkflowOutcome;
        if (!outcome.ok) return conn.sendError(requestId, outcome.code, outcome.message);
        body = { taskIds: outcome.taskIds };
        break;
      }
      case Kind.PARENT_ENDED: {
        const state = FOREIGN_END_STATES.find((s) => s === q.state);
        if (state === undefined) return conn.sendError(requestId, "E_BAD_REQUEST", `state must be one of ${FOREIGN_END_STATES.join(", ")}`);
        const output = q.output instanceof Uint8Array ? q.output : EMPTY;
        const result = this.port.record(Ev.PARENT_ENDED, taskId, encodeParentEnded(state, output)) as { count: number };
        body = { taskId, settled: result.count };
        break;
      }
      case Kind.DLQ_REQUEUE: {
        const result = this.port.record(Ev.DLQ_REQUEUE, taskId) as { count: number };
        if (result.count === 0) return conn.sendError(requestId, "E_UNKNOWN_TASK", `task ${taskId} is not in the dead-letter queue of shard ${this.shard}`);
        body = { taskId, requeued: true };
        break;
      }
      default: {
        const ids = Array.isArray(q.taskIds) ? q.taskIds.map(Number).filter(Number.isSafeInteger) : [];
        const w = new ByteWriter(4 + ids.length * 8);
        w.u32(ids.length);
        for (const id of ids) w.f64(id);
        const result = this.port.record(Ev.DLQ_PURGE, 0, w.toBytes()) as { count: number };
        body = { purged: result.count };
      }
    }
    this.port.replyWhenCommitted(conn, requestId, { requestId, ...body });
  }

  /** Checked here, before the log, so replicas never disagree about a limit (theirs may differ). */
  refusePayload(conn: Connection, requestId: number, bytes: number, where = "the payload"): void {
    conn.sendError(requestId, "E_TOO_LARGE", `${where} is ${bytes} bytes; this coordinator accepts at most ${this.payloadBytesMax} (--payload-bytes-max)`);
  }

  private unknownTask(conn: Connection, requestId: number, taskId: number): void {
    conn.sendError(requestId, "E_UNKNOWN_TASK", `no task ${taskId} on shard ${this.shard} (never submitted, or evicted after retention)`);
  }

  /** One task by `taskId`, or by `idempotencyKey` when that is a non-empty string. */
  taskQuery(conn: Connection, req: { requestId?: unknown; taskId?: unknown; idempotencyKey?: unknown }): void {
    const requestId = Number(req.requestId) || 0;
    const key = typeof req.idempotencyKey === "string" && req.idempotencyKey !== "" ? req.idempotencyKey : undefined;
    const task = key === undefined ? this.port.scheduler().task(Number(req.taskId)) : this.port.scheduler().taskWithKey(key);
    if (task === undefined && key !== undefined) return conn.sendError(requestId, "E_UNKNOWN_TASK", `no task with idempotency key ${JSON.stringify(key)} on shard ${this.shard}`);
    if (task === undefined) return this.unknownTask(conn, requestId, Number(req.taskId));
    const info = taskInfo(requestId, task);
    const progress = this.port.progressOf(task.id);
    if (progress !== undefined && task.state === "leased") info.progress = progress;
    writeControl(conn.writer, Kind.TASK_INFO, info);
    conn.queueFlush();
  }
}
