// The replication log: every input the scheduler takes, as bytes. The primary
// appends an entry, then applies that same entry; a backup applies the entries
// it receives with the same function. The scheduler is deterministic (time is
// in the entry), so both end in the same state: one mechanism, no divergence.
//
// entry = u8 type | f64 now | f64 subject | body
//   SUBMIT         subject = watcher connection id,  body = the SUBMIT message body as received
//   RESULT         subject = worker id,              body = the RESULT message body as received
//   HEARTBEAT      subject = worker id,              body = u32 n | f64 running task id * n
//   WORKER_JOINED  subject = worker id,              body = u32 slots | u8 n | str8 tag * n [| u16 m | str8 type * m]
//                  (no type list: the worker runs any type, as entries written before workers announced types)
//   WORKER_LEFT    subject = worker id
//   TICK, DISPATCH subject = 0
//   PROMOTE        subject = new epoch
//   CANCEL         subject = task id
//   WATCH          subject = watcher connection id,  body = u32 requestId | f64 task id
//   WORKFLOW       subject = 0,                      body = msgpack WorkflowNode[]
//   DLQ_REQUEUE    subject = task id
//   DLQ_PURGE      subject = 0,                      body = u32 n | f64 task id * n (none: all)
//   WORKER_DRAINING subject = worker id
//   WORKER_CREDIT  subject = worker id,              body = u32 slots (its new credit here)
//   PARENT_ENDED   subject = task id on another shard, body = u8 state (0 completed, 1 failed, 2 cancelled) | bytes32 output

import type { Scheduler, SubmitOutcome, SubmitRequest, WorkflowNodeRequest, WorkflowOutcome } from "../core/scheduler.ts";
import type { Backoff, TaskState } from "../core/task.ts";
import type { DependencyRef } from "../core/workflow.ts";
import { ByteWriter } from "../protocol/byte-writer.ts";
import { decodePeerMsgpack, readResult, readSubmit, Reader } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { BackoffType, SUBMIT_FLAG_NOTIFY, TaskStatus, type SubmitExtras, type WorkflowNode } from "../protocol/messages.ts";

/** Task types one worker may announce (the log entry counts them in a u16). */
export const WORKER_TYPES_MAX = 4096;

export const Ev = {
  SUBMIT: 1,
  RESULT: 2,
  HEARTBEAT: 3,
  WORKER_JOINED: 4,
  WORKER_LEFT: 5,
  TICK: 6,
  DISPATCH: 7,
  PROMOTE: 8,
  CANCEL: 9,
  WATCH: 10,
  WORKFLOW: 11,
  DLQ_REQUEUE: 12,
  DLQ_PURGE: 13,
  WORKER_DRAINING: 14,
  PARENT_ENDED: 15,
  WORKER_CREDIT: 16,
} as const;

export function encodeWorkerCredit(slots: number): Uint8Array {
  const w = new ByteWriter(4);
  w.u32(slots);
  return w.toBytes();
}

/** PARENT_ENDED's state byte. */
export const FOREIGN_END_STATES = ["completed", "failed", "cancelled"] as const;

export function encodeParentEnded(state: (typeof FOREIGN_END_STATES)[number], output: Uint8Array): Uint8Array {
  const w = new ByteWriter(5 + output.length);
  w.u8(FOREIGN_END_STATES.indexOf(state));
  w.bytes32(output);
  return w.toBytes();
}

/** Entries appended since the last take(), as shipped to backups and written to the WAL. */
export interface LogBatch {
  firstIndex: number;
  count: number;
  bytes: Uint8Array;
}

/** What applying an entry returns to the primary (backups ignore it). */
export type ApplyResult = SubmitOutcome | WorkflowOutcome | { ok: true; state?: TaskState | undefined; count?: number } | undefined;

const EMPTY = new Uint8Array(0);
const HEADER_BYTES = 1 + 8 + 8;

/**
 * Entries appended since the last take(), each `u32 length | entry`, plus the
 * index of the last one. Index 0 means "nothing yet"; the first entry is 1.
 */
export class EventLog {
  private readonly pending = new ByteWriter(256 * 1024, 1 << 30);
  private pendingCount = 0;
  /** Index of the last entry appended. */
  lastIndex: number;

  constructor(lastIndex = 0) {
    this.lastIndex = lastIndex;
  }

  /**
   * Appends one entry whose body is body[bodyStart, bodyEnd); returns where
   * the entry starts in `bytes` (it ends at `length`). No views are made: this
   * runs twice per task.
   */
  append(type: number, now: number, subject: number, body: Uint8Array = EMPTY, bodyStart = 0, bodyEnd = body.length): number {
    const w = this.pending;
    w.u32(HEADER_BYTES + bodyEnd - bodyStart);
    const start = w.length;
    w.u8(type);
    w.f64(now);
    w.f64(subject);
    w.rawRange(body, bodyStart, bodyEnd);
    this.pendingCount++;
    this.lastIndex++;
    return start;
  }

  /** The buffer entries are appended to: valid until the next append (it may grow) or take. */
  get bytes(): Uint8Array {
    return this.pending.bytes;
  }

  /** Where the last entry appended ends in `bytes`. */
  get length(): number {
    return this.pending.length;
  }

  /** A view of the entry that starts at `start` and was appended last. */
  entry(start: number): Uint8Array {
    return this.pending.bytes.subarray(start, this.pending.length);
  }

  /**
   * Takes back the entry just appended (it started at `start`), when applying
   * it failed (a malformed message): the log must hold only what the
   * primary's state holds. Applying validates the whole entry before it
   * changes anything.
   */
  dropLast(start: number): void {
    this.pending.length = start - 4;
    this.pendingCount--;
    this.lastIndex--;
  }

  get pendingEntries(): number {
    return this.pendingCount;
  }

  /** The batch since the last take: the index of its first entry, how many, and their bytes (valid until the next append). */
  take(): LogBatch {
    const batch = { firstIndex: this.lastIndex - this.pendingCount + 1, count: this.pendingCount, bytes: this.pending.bytes.subarray(0, this.pending.length) };
    this.pending.reset();
    this.pendingCount = 0;
    return batch;
  }
}

function backoffOf(type: number, delayMs: number, maxDelayMs: number): Backoff | undefined {
  if (type === BackoffType.NONE) return undefined;
  return { type: type === BackoffType.FIXED ? "fixed" : "exponential", delayMs, maxDelayMs: maxDelayMs || delayMs * 1024 };
}

/** Relative times in a submission become absolute with the coordinator's `now` (the same on every replica: it is in the entry). */
function extrasToRequest(x: SubmitExtras, now: number): Partial<SubmitRequest> {
  return {
    runAt: x.delayMs > 0 ? now + x.delayMs : 0,
    deadline: x.deadlineMs > 0 ? now + x.deadlineMs : 0,
    backoff: backoffOf(x.backoffType, x.backoffDelayMs, x.backoffMaxDelayMs),
    tags: x.tags,
    dependsOn: x.dependsOn,
  };
}

/** A WORKFLOW node from the wire, checked field by field (it is user input). */
export function workflowNodeToRequest(n: WorkflowNode, now: number): WorkflowNodeRequest {
  const num = (v: unknown, fallback = 0) => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : fallback);
  const backoff = n.backoff && typeof n.backoff === "object"
    ? backoffOf(n.backoff.type === "fixed" ? BackoffType.FIXED : BackoffType.EXPONENTIAL, num(n.backoff.delayMs), num(n.backoff.maxDelayMs))
    : undefined;
  return {
    type: typeof n.type === "string" ? n.type : "",
    payload: n.payload instanceof Uint8Array ? n.payload.slice() : EMPTY,
    priority: num(n.priority, 100),
    maxAttempts: num(n.maxAttempts),
    timeoutMs: num(n.timeoutMs),
    idempotencyKey: typeof n.idempotencyKey === "string" ? n.idempotencyKey : "",
    runAt: num(n.delayMs) > 0 ? now + num(n.delayMs) : 0,
    deadline: num(n.deadlineMs) > 0 ? now + num(n.deadlineMs) : 0,
    backoff,
    tags: Array.isArray(n.tags) ? n.tags.filter((t): t is string => typeof t === "string") : [],
    dependsOn: Array.isArray(n.dependsOn) ? n.dependsOn.map(dependencyRef) : [],
  };
}

/** One dependsOn entry of a WORKFLOW node: {node: index} or {taskId: id}; anything else is malformed. */
function dependencyRef(d: unknown): DependencyRef {
  const ref = (d !== null && typeof d === "object" ? d : {}) as Record<string, unknown>;
  if (typeof ref.node === "number") return { node: ref.node };
  if (typeof ref.taskId === "number") return { taskId: ref.taskId };
  throw new ProtocolError("E_BAD_REQUEST", "a workflow dependency must be {node: index} or {taskId: id}");
}

/** Task ids a worker reports running: the leases its heartbeat extends. */
export function encodeRunning(taskIds: readonly number[]): Uint8Array {
  const w = new ByteWriter(4 + taskIds.length * 8);
  w.u32(taskIds.length);
  for (const id of taskIds) w.f64(id);
  return w.toBytes();
}

/** `types` undefined: the worker runs any type (writes the old entry, without the list). */
export function encodeWorkerJoined(slots: number, tags: readonly string[], types?: readonly string[]): Uint8Array {
  const w = new ByteWriter(64);
  w.u32(slots);
  w.u8(Math.min(tags.length, 255));
  for (const tag of tags.slice(0, 255)) w.str8(tag);
  if (types !== undefined) {
    // parseWorkerHello refuses more; a silent cut here would make a worker look unable to run a type it has.
    if (types.length > WORKER_TYPES_MAX) throw new ProtocolError("E_TOO_LARGE", `a worker announces at most ${WORKER_TYPES_MAX} task types, not ${types.length}`);
    w.u16(types.length);
    for (const type of types) w.str8(type);
  }
  return w.toBytes();
}

/**
 * Applies one entry (r positioned on it) to the scheduler. Returns the
 * outcome for SUBMIT, undefined for the rest. The caller owns the effects
 * (scheduler.takeReady()).
 */
export function applyEntry(scheduler: Scheduler, r: Reader): ApplyResult {
  const type = r.u8();
  const now = r.f64();
  const subject = r.f64();
  // The entry's time orders queues and leases on every replica alike; NaN would order nothing.
  if (!Number.isFinite(now)) throw new ProtocolError("E_BAD_FRAME", `log entry time ${now} is not finite`);
  // A worker or task id of NaN equals nothing, itself included: a worker joined as NaN could never have its leases released.
  if (Number.isNaN(subject)) throw new ProtocolError("E_BAD_FRAME", "log entry subject is NaN");
  switch (type) {
    case Ev.SUBMIT: {
      const f = readSubmit(r);
      const notify = (f.flags & SUBMIT_FLAG_NOTIFY) !== 0;
      return scheduler.submit({
        type: f.type,
        payload: f.payload.length === 0 ? EMPTY : f.payload.slice(),
        priority: f.priority,
        maxAttempts: f.maxAttempts,
        timeoutMs: f.timeoutMs,
        idempotencyKey: f.idempotencyKey,
        watcher: notify ? subject : 0,
        watchRequestId: f.requestId,
        ...(f.extras === undefined ? {} : extrasToRequest(f.extras, now)),
      }, now);
    }
    case Ev.CANCEL:
      r.done();
      return { ok: true, state: scheduler.cancel(subject, now) };
    case Ev.WATCH: {
      const requestId = r.u32();
      const taskId = r.f64();
      r.done();
      return { ok: true, count: scheduler.watchTask(taskId, { conn: subject, requestId }) ? 1 : 0 };
    }
    case Ev.WORKFLOW: {
      const nodes = decodePeerMsgpack(r.bytes.subarray(r.pos, r.end));
      r.pos = r.end;
      if (!Array.isArray(nodes) || !nodes.every((n) => n !== null && typeof n === "object" && !Array.isArray(n))) {
        throw new ProtocolError("E_BAD_FRAME", "a WORKFLOW entry must be an array of maps");
      }
      return scheduler.submitWorkflow((nodes as WorkflowNode[]).map((n) => workflowNodeToRequest(n, now)), now);
    }
    case Ev.PARENT_ENDED: {
      const state = FOREIGN_END_STATES[r.u8()];
      const output = r.bytes32();
      r.done();
      if (state === undefined) throw new ProtocolError("E_BAD_FRAME", "PARENT_ENDED with an unknown state");
      return { ok: true, count: scheduler.foreignParentEnded(subject, state, output, now) ? 1 : 0 };
    }
    case Ev.DLQ_REQUEUE:
      r.done();
      return { ok: true, count: scheduler.requeue(subject, now) ? 1 : 0 };
    case Ev.WORKER_DRAINING:
      scheduler.workerDraining(subject);
      break;
    case Ev.DLQ_PURGE: {
      const ids: number[] = [];
      for (let n = r.u32(); n > 0; n--) ids.push(r.f64());
      r.done();
      return { ok: true, count: scheduler.purge(ids) };
    }
    case Ev.RESULT: {
      const f = readResult(r);
      scheduler.result(subject, f.taskId, f.attempt, f.status === TaskStatus.OK, f.output.length === 0 ? EMPTY : f.output.slice(), now);
      return undefined;
    }
    case Ev.HEARTBEAT: {
      const running: number[] = [];
      for (let n = r.u32(); n > 0; n--) running.push(r.f64());
      scheduler.heartbeat(subject, now, running);
      break;
    }
    case Ev.WORKER_JOINED: {
      const slots = r.u32();
      const tags: string[] = [];
      for (let n = r.u8(); n > 0; n--) tags.push(r.str8());
      let types: string[] | undefined;
      if (r.pos < r.end) {
        types = [];
        for (let n = r.u16(); n > 0; n--) types.push(r.str8());
      }
      scheduler.workerJoined(subject, slots, tags, now, types);
      break;
    }
    case Ev.WORKER_LEFT:
      scheduler.workerLeft(subject, now);
      break;
    case Ev.WORKER_CREDIT:
      scheduler.workerCredit(subject, r.u32());
      break;
    case Ev.TICK:
      scheduler.tick(now);
      break;
    case Ev.DISPATCH:
      scheduler.dispatch(now);
      break;
    case Ev.PROMOTE:
      scheduler.promoted(now);
      break;
    default:
      throw new ProtocolError("E_BAD_FRAME", `unknown log entry type ${type}`);
  }
  r.done();
  return undefined;
}
