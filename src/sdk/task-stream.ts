// The load generators' path through one connection (SchedulerClient.sendTasks):
// tasks go out as SUBMITs or one SUBMIT_BATCH from one reused fields object,
// the caller names each by a number (its token), and each end comes back
// through one handler: no promise, closure or object per task.

import type { FrameWriter, Reader } from "../protocol/codec.ts";
import { writeSubmit, writeSubmitBody } from "../protocol/codec.ts";
import { readSubmittedBatch } from "../protocol/batch-codec.ts";
import { Kind, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_NOTIFY, type SubmitFields } from "../protocol/messages.ts";

/**
 * Where tasks sent with sendTasks() end, one call each. `output` is a view
 * (copy it to keep it); `code` is set when the task was refused or lost (E_*),
 * undefined when it ran (ok, or failed with its error text in output).
 */
export interface TaskEnds {
  taskEnded(token: number, ok: boolean, output: Uint8Array, code: string | undefined): void;
}

/** A SUBMIT_BATCH sent: its tasks' tokens, and their own request ids when each waits for its TASK_DONE. */
interface SentBatch {
  tokens: number[];
  requestIds: number[] | undefined;
}

const EMPTY = new Uint8Array(0);

export class TaskStream {
  /** Request id -> the caller's token (a number: no object per task). */
  private readonly tokens = new Map<number, number>();
  private readonly batches = new Map<number, SentBatch>();
  private readonly fields: SubmitFields = { requestId: 0, priority: 100, flags: 0, maxAttempts: 0, timeoutMs: 0, type: "", idempotencyKey: "", payload: EMPTY };
  ends: TaskEnds | undefined;

  constructor(private readonly takeRequestId: () => number) {}

  /** Writes `count` tasks (fill(k, fields) sets task k and returns its token) as SUBMITs or one SUBMIT_BATCH. */
  send(w: FrameWriter, count: number, fill: (k: number, fields: SubmitFields) => number, waitForEnd: boolean, asBatch: boolean): void {
    const f = this.fields;
    f.flags = waitForEnd ? SUBMIT_FLAG_NOTIFY : 0;
    if (!asBatch) {
      for (let k = 0; k < count; k++) {
        const token = fill(k, f);
        f.requestId = this.takeRequestId();
        writeSubmit(w, f);
        this.tokens.set(f.requestId, token);
      }
      return;
    }
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

  /** A SUBMITTED or TASK_DONE for a task of ours: ends it and returns true. */
  answered(requestId: number, ok: boolean, output: Uint8Array): boolean {
    const token = this.tokens.get(requestId);
    if (token === undefined) return false;
    this.tokens.delete(requestId);
    this.ends?.taskEnded(token, ok, output, undefined);
    return true;
  }

  /** A SUBMITTED_BATCH (r on its body) for a batch of ours: refused tasks end now, accepted ones too unless they wait for their TASK_DONE. */
  batchAnswered(r: Reader): boolean {
    if (r.end - r.pos < 4) return false;
    const batchId = r.view.getUint32(r.pos, true);
    const batch = this.batches.get(batchId);
    if (batch === undefined) return false;
    this.batches.delete(batchId);
    const outcomes = readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX).outcomes;
    for (let k = 0; k < batch.tokens.length; k++) {
      const o = outcomes[k] ?? { ok: false, code: "E_BAD_FRAME", message: "no outcome for this task" };
      if (o.ok && batch.requestIds !== undefined) continue;
      // A notify task may have ended already, by an ERROR on its own request id (its shard's link was lost).
      if (batch.requestIds !== undefined && !this.tokens.delete(batch.requestIds[k]!)) continue;
      this.ends?.taskEnded(batch.tokens[k]!, o.ok, EMPTY, o.ok ? undefined : o.code);
    }
    return true;
  }

  /** An ERROR on a request of ours (a task, or a whole batch): its tasks end with `code`; returns true. */
  refused(requestId: number, code: string): boolean {
    if (this.answeredWith(requestId, code)) return true;
    const batch = this.batches.get(requestId);
    if (batch === undefined) return false;
    this.batches.delete(requestId);
    this.batchFailed(batch, code);
    return true;
  }

  /** The connection closed: every task still out ends with `code`. */
  closed(code: string): void {
    const batches = [...this.batches.values()];
    this.batches.clear();
    for (const batch of batches) this.batchFailed(batch, code);
    const tokens = [...this.tokens.values()];
    this.tokens.clear();
    for (const token of tokens) this.ends?.taskEnded(token, false, EMPTY, code);
  }

  private answeredWith(requestId: number, code: string): boolean {
    const token = this.tokens.get(requestId);
    if (token === undefined) return false;
    this.tokens.delete(requestId);
    this.ends?.taskEnded(token, false, EMPTY, code);
    return true;
  }

  private batchFailed(batch: SentBatch, code: string): void {
    for (let k = 0; k < batch.tokens.length; k++) {
      if (batch.requestIds !== undefined && !this.tokens.delete(batch.requestIds[k]!)) continue; // ended already
      this.ends?.taskEnded(batch.tokens[k]!, false, EMPTY, code);
    }
  }
}
