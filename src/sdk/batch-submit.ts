// Many tasks at once: how a list is cut into SUBMIT_BATCH messages (by count
// and by payload bytes, so each stays well inside a server's frame limit) and
// how their outcomes come back together, in the caller's order. Apart from the
// client because none of it touches the connection: the client hands in how a
// task becomes wire fields and how one batch is sent.

import { isErrorCode, type ErrorCode } from "../protocol/errors.ts";
import { SUBMIT_BATCH_TASKS_MAX, type BatchItemOutcome, type SubmitFields } from "../protocol/messages.ts";
import { SchedulerError } from "./errors.ts";
import type { SubmitOptions } from "./submit-options.ts";

/** One task of submitMany / submitBatch. */
export interface BatchTask {
  type: string;
  payload?: unknown;
  options?: SubmitOptions;
}

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

/**
 * Each task's outcome in order: a task `fieldsOf` refuses (a bad option) is
 * refused here; the rest go as batches of SUBMIT_BATCH_TASKS_MAX tasks and
 * BATCH_PAYLOAD_BYTES_MAX payload bytes at most, through `sendBatch`. Rejects
 * when a whole batch does.
 */
export async function submitInBatches(
  tasks: readonly BatchTask[],
  fieldsOf: (task: BatchTask) => SubmitFields | string,
  sendBatch: (tasks: SubmitFields[]) => Promise<BatchItemOutcome[]>,
): Promise<BatchItemOutcome[]> {
  const outcomes: BatchItemOutcome[] = new Array(tasks.length);
  const sends: Promise<void>[] = [];
  let chunk: Array<{ index: number; fields: SubmitFields }> = [];
  let chunkBytes = 0;
  const flush = () => {
    const sent = chunk;
    chunk = [];
    chunkBytes = 0;
    sends.push(sendBatch(sent.map((t) => t.fields)).then((answers) => {
      for (let i = 0; i < sent.length; i++) outcomes[sent[i]!.index] = answers[i]!;
    }));
  };
  for (const [index, t] of tasks.entries()) {
    const fields = fieldsOf(t);
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

/** Every task's id when all were accepted; else a BatchSubmitError naming the first refused. */
export function acceptedIds(outcomes: BatchItemOutcome[]): number[] {
  const refused = outcomes.findIndex((o) => !o.ok);
  if (refused < 0) return outcomes.map((o) => (o as { taskId: number }).taskId);
  const first = outcomes[refused] as { code: string; message: string };
  throw new BatchSubmitError(outcomes, { index: refused, code: isErrorCode(first.code) ? first.code : "E_BAD_REQUEST", message: first.message });
}
