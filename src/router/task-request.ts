// What the router's REST and gRPC APIs share: a task spec checked field by
// field before anything is submitted, tasks and results shown as JSON, and
// the error both answer with (an HTTP status beside our code; gRPC maps the code).

import { encode } from "@msgpack/msgpack";
import { shardOfTask } from "../core/task.ts";
import type { BatchItemOutcome, TaskInfo } from "../protocol/messages.ts";
import { publicView } from "../protocol/public-view.ts";
import { acceptedIds } from "../sdk/batch-submit.ts";
import { BACKOFF_FIELDS, decodeResult, unknownField, type BatchSubmitError, type BatchTask, type SchedulerClient, type SubmitOptions } from "../sdk/client.ts";
import { SchedulerError } from "../sdk/errors.ts";
import { builtinPayloadProblem } from "../worker/builtin-tasks.ts";

/** A refused request: our error code, and the HTTP status REST answers with. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function taskId(text: string): number {
  const id = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(id)) throw new HttpError(400, "E_BAD_REQUEST", `"${text}" is not a task id`);
  return id;
}

/**
 * Submits tasks given as REST bodies: every one is checked before any is
 * submitted, so a bad one refuses the whole request. Several go as SUBMIT_BATCH
 * messages, each acknowledged once all its tasks are replicated; one refused
 * there rejects with a BatchSubmitError saying, task by task, which were accepted.
 * Resolves with their ids in order.
 */
export async function submitTasks(client: SchedulerClient, specs: readonly unknown[], batchMax: number, where: (i: number) => string): Promise<number[]> {
  if (specs.length === 0) throw new HttpError(400, "E_BAD_REQUEST", "an empty batch");
  if (specs.length > batchMax) throw new HttpError(413, "E_TOO_LARGE", `at most ${batchMax} tasks per request`);
  const parsed = specs.map((s, i) => parseTask(s, where(i)));
  if (parsed.length === 1) return [await client.submit(parsed[0]!.type, parsed[0]!.payload, parsed[0]!.options)];
  return acceptedIds(await submitBatchAndAlone(client, parsed));
}

/**
 * Each task's outcome in order. A task whose parents are on two or more shards goes
 * as a SUBMIT of its own: the router checks the parents on the other shards before
 * the task may exist, which a batch does not wait for (it refuses such a task). The
 * rest go as batches. A lone task's refusal is its outcome, as a batch reports it.
 */
async function submitBatchAndAlone(client: SchedulerClient, tasks: readonly BatchTask[]): Promise<BatchItemOutcome[]> {
  const alone = tasks.map((t) => new Set((t.options?.dependsOn ?? []).map(shardOfTask)).size > 1);
  const batched = tasks.filter((_, i) => !alone[i]);
  const lone = tasks.filter((_, i) => alone[i]).map((t) =>
    client.submit(t.type, t.payload, t.options).then(
      (taskId): BatchItemOutcome => ({ ok: true, taskId }),
      (err: unknown): BatchItemOutcome => {
        if (!(err instanceof SchedulerError)) throw err;
        return { ok: false, code: err.code, message: err.detail };
      },
    ));
  const [batchOutcomes, loneOutcomes] = await Promise.all([batched.length > 0 ? client.submitBatch(batched) : [], Promise.all(lone)]);
  let nextBatched = 0;
  let nextLone = 0;
  return alone.map((isAlone) => (isAlone ? loneOutcomes[nextLone++]! : batchOutcomes[nextBatched++]!));
}

/** A partly refused batch, task by task, for a REST error body: `{taskId}` accepted (it exists), `{error}` refused. */
export function batchOutcomes(err: BatchSubmitError): Array<{ taskId: number } | { error: { code: string; message: string } }> {
  return err.outcomes.map((o) => (o.ok ? { taskId: o.taskId } : { error: { code: o.code, message: o.message } }));
}

const OPTIONAL_NUMBERS = ["priority", "maxAttempts", "timeoutMs", "delayMs", "deadlineMs"] as const;
/** The fields a task of a POST body may have: any other is refused by name (a misspelt one would be ignored). */
const TASK_FIELDS: readonly string[] = ["type", "payload", ...OPTIONAL_NUMBERS, "idempotencyKey", "backoff", "tags", "dependsOn"];

/** Validates one task of a POST body: {type, payload?, priority?, maxAttempts?, timeoutMs?, idempotencyKey?, delayMs?, deadlineMs?, backoff?, tags?, dependsOn?}. */
export function parseTask(value: unknown, where: string): { type: string; payload: unknown; options: SubmitOptions } {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new HttpError(400, "E_BAD_REQUEST", `${where} must be an object`);
  const t = value as Record<string, unknown>;
  const stray = unknownField(t, TASK_FIELDS);
  if (stray !== undefined) throw new HttpError(400, "E_BAD_REQUEST", `${where}.${stray} is not a task field (known: ${TASK_FIELDS.join(", ")})`);
  if (typeof t.type !== "string" || t.type === "") throw new HttpError(400, "E_BAD_REQUEST", `${where}.type must be a non-empty string`);
  const options: SubmitOptions = {};
  for (const key of OPTIONAL_NUMBERS) {
    if (t[key] === undefined) continue;
    const n = t[key];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) throw new HttpError(400, "E_BAD_REQUEST", `${where}.${key} must be a non-negative integer`);
    options[key] = n;
  }
  if (options.priority !== undefined && options.priority > 255) throw new HttpError(400, "E_BAD_REQUEST", `${where}.priority must be from 0 to 255`);
  if (t.idempotencyKey !== undefined) {
    if (typeof t.idempotencyKey !== "string") throw new HttpError(400, "E_BAD_REQUEST", `${where}.idempotencyKey must be a string`);
    options.idempotencyKey = t.idempotencyKey;
  }
  if (t.tags !== undefined) {
    if (!Array.isArray(t.tags) || !t.tags.every((x) => typeof x === "string")) throw new HttpError(400, "E_BAD_REQUEST", `${where}.tags must be an array of strings`);
    options.tags = t.tags as string[];
  }
  if (t.dependsOn !== undefined) {
    if (!Array.isArray(t.dependsOn) || !t.dependsOn.every((x) => Number.isSafeInteger(x))) throw new HttpError(400, "E_BAD_REQUEST", `${where}.dependsOn must be an array of task ids`);
    options.dependsOn = t.dependsOn as number[];
  }
  if (t.backoff !== undefined) {
    const b = t.backoff as Record<string, unknown>;
    const strayBackoff = b !== null && typeof b === "object" ? unknownField(b, BACKOFF_FIELDS) : undefined;
    if (strayBackoff !== undefined) throw new HttpError(400, "E_BAD_REQUEST", `${where}.backoff.${strayBackoff} is not a backoff field (known: ${BACKOFF_FIELDS.join(", ")})`);
    if (b === null || typeof b !== "object" || (b.type !== "exponential" && b.type !== "fixed") || typeof b.delayMs !== "number" || b.delayMs < 0) {
      throw new HttpError(400, "E_BAD_REQUEST", `${where}.backoff must be {type: "exponential"|"fixed", delayMs, maxDelayMs?}`);
    }
    options.backoff = { type: b.type, delayMs: b.delayMs, maxDelayMs: typeof b.maxDelayMs === "number" ? b.maxDelayMs : undefined };
  }
  // Checked before any task of the batch is submitted, so a bad one refuses the whole request.
  const problem = builtinPayloadProblem(t.type, t.payload === undefined ? EMPTY_PAYLOAD : encode(t.payload));
  if (problem !== undefined) throw new HttpError(400, "E_BAD_REQUEST", `${where}.payload: ${problem}`);
  return { type: t.type, payload: t.payload, options };
}

const EMPTY_PAYLOAD = new Uint8Array(0);

/** A result for JSON: msgpack values as they are, other bytes as {base64}. */
export function jsonResult(output: Uint8Array | undefined): unknown {
  const value = decodeResult(output);
  if (value instanceof Uint8Array) return { base64: Buffer.from(value).toString("base64") };
  return value ?? null;
}

/** TaskInfo for JSON: the result decoded instead of raw bytes. */
export function showTask(info: TaskInfo): Record<string, unknown> {
  const { output, ...rest } = publicView(info);
  return { ...rest, result: info.state === "completed" ? jsonResult(output) : undefined };
}
