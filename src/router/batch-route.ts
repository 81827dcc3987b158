// A SUBMIT_BATCH through the router: its tasks are split by shard (the same
// choice as for a lone SUBMIT), each shard's part goes to that shard's primary
// as one SUBMIT_BATCH of raw task bodies, and the parts' answers are joined
// back into one SUBMITTED_BATCH in the client's order. A part that fails as a
// whole (no primary, a lost link, E_NOT_PRIMARY) fails only its own tasks,
// each with that error in its slot: the client retries those under their keys.

import type { ShardMap } from "../core/shard-map.ts";
import { shardOfTask } from "../core/task.ts";
import type { Connection } from "../net/connection.ts";
import { SUBMIT_FLAGS_AT, type Reader } from "../protocol/codec.ts";
import { readBatchTask, peekSubmitBatchRequestId, readSubmitBatchSpansOr, writeSubmittedBatch, type SubmitBatchSpans } from "../protocol/batch-codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { Kind, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_EXTRAS, SUBMIT_FLAG_NOTIFY, type BatchItemOutcome } from "../protocol/messages.ts";
import type { Routes } from "./routes.ts";

// SUBMIT body layout (codec.ts): requestId u32 | priority u8 | flags u8 | maxAttempts u16 | timeoutMs u32 | type str8 | key str8 | payload
const SUBMIT_TYPE_AT = 12;

/** What a batch needs of the router. */
export interface BatchRouterPort {
  shardMap(): ShardMap;
  /** The primary of a shard: its routes and a connection that takes writes now, or why there is none. */
  primary(shard: number): { routes: Routes; conn: Connection } | { code: string; message: string };
  forwarded(tasks: number): void;
  /** A part unanswered this long fails its tasks as E_UNAVAILABLE: a stopped primary may keep its socket open. */
  partTimeoutMs: number;
}

/**
 * How long the router waits for a shard to accept its part of a batch (not for the tasks
 * to run): longer than a loaded shard needs to log and replicate 10,000 tasks, shorter
 * than the SDK's answerTimeoutMs (10 s), so a client hears which tasks to re-send
 * instead of dropping its connection.
 */
export const BATCH_PART_TIMEOUT_MS = 5_000;

/** Routes one SUBMIT_BATCH from `conn` (r on its body). A batch whose framing is broken is refused whole, on its request. */
export function routeSubmitBatch(port: BatchRouterPort, conn: Connection, r: Reader): void {
  const requestId = peekSubmitBatchRequestId(r);
  const spans = readSubmitBatchSpansOr(r, SUBMIT_BATCH_TASKS_MAX, (code, message) => conn.sendError(requestId, code, message));
  if (spans === undefined) return;
  const outcomes: BatchItemOutcome[] = new Array(spans.starts.length);
  const byShard = new Map<number, number[]>();
  const shardMap = port.shardMap();
  for (let i = 0; i < spans.starts.length; i++) {
    const shard = shardOfBatchTask(shardMap, r, spans, i);
    if (typeof shard !== "number") outcomes[i] = shard;
    else byShard.get(shard)?.push(i) ?? byShard.set(shard, [i]);
  }
  let parts = byShard.size;
  conn.idle.startWait();
  const partDone = () => {
    if (--parts > 0) return;
    conn.idle.endWait();
    if (!conn.writable()) return;
    writeSubmittedBatch(conn.writer, requestId, outcomes);
    conn.queueFlush();
  };
  parts++; // held until every part is sent: an answer cannot complete the batch early
  for (const [shard, tasks] of byShard) forwardPart(port, conn, r.bytes, spans, shard, tasks, outcomes, partDone);
  partDone();
}

/** The shard a task of the batch goes to, or its refusal. */
function shardOfBatchTask(shardMap: ShardMap, r: Reader, spans: SubmitBatchSpans, i: number): number | BatchItemOutcome {
  const bytes = r.bytes;
  const start = spans.starts[i]!;
  const end = spans.ends[i]!;
  const refuse = (code: string, message: string): BatchItemOutcome => ({ ok: false, code, message: `task ${i}: ${message}` });
  if (end - start < SUBMIT_TYPE_AT + 2) return refuse("E_BAD_FRAME", "SUBMIT body too short");
  const keyAt = start + SUBMIT_TYPE_AT + 1 + bytes[start + SUBMIT_TYPE_AT]!;
  if (keyAt >= end || keyAt + 1 + bytes[keyAt]! > end) return refuse("E_BAD_FRAME", "SUBMIT body truncated before the end of its key");
  const keyEnd = keyAt + 1 + bytes[keyAt]!;
  if ((bytes[start + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_EXTRAS) === 0) return shardMap.pick(bytes, keyAt + 1, keyEnd);
  let parents: number[];
  try {
    parents = readBatchTask(r, spans, i).extras?.dependsOn ?? [];
  } catch (err) {
    if (!(err instanceof ProtocolError)) throw err;
    return refuse(err.code, err.message);
  }
  if (parents.length === 0) return shardMap.pick(bytes, keyAt + 1, keyEnd);
  // A task goes to the shard of its first parent. Parents on other shards need a check there
  // before the task may exist (router.ts does it for a lone SUBMIT); a batch does not wait for that.
  const shard = shardOfTask(parents[0]!);
  if (parents.some((p) => shardOfTask(p) !== shard)) return refuse("E_BAD_REQUEST", "a task of a batch depends on tasks of one shard only; submit it alone");
  return shard;
}

/** The little-endian u32 at bytes[at] (a task's request id), without a DataView per task. */
function readU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24)) >>> 0;
}

/** Sends the tasks of one shard as one SUBMIT_BATCH; their outcomes land in `outcomes`, then `done`. */
function forwardPart(
  port: BatchRouterPort, client: Connection, bytes: Uint8Array, spans: SubmitBatchSpans, shard: number, tasks: number[],
  outcomes: BatchItemOutcome[], done: () => void,
): void {
  const primary = port.primary(shard);
  if (!("routes" in primary)) {
    for (const i of tasks) outcomes[i] = { ok: false, code: primary.code, message: primary.message };
    return done();
  }
  const { routes, conn } = primary;
  // A task with notify is answered later by its TASK_DONE: its own route carries that back under the client's id.
  const doneRoutes: number[] = new Array(tasks.length).fill(0);
  const fail = (code: string, message: string) => {
    for (const [j, i] of tasks.entries()) {
      outcomes[i] = { ok: false, code, message };
      if (doneRoutes[j] !== 0) routes.close(doneRoutes[j]!);
    }
  };
  const timer = setTimeout(() => {
    if (routes.close(upstreamId) === undefined) return;
    fail("E_UNAVAILABLE", `shard ${shard} did not answer its part of the batch within ${port.partTimeoutMs} ms; retry`);
    done();
  }, port.partTimeoutMs);
  const upstreamId = routes.open({
    client: undefined, clientRequestId: 0, awaitsDone: false,
    onControl: (_kind, body) => {
      clearTimeout(timer);
      fail(String(body.code ?? "E_UNAVAILABLE"), String(body.message ?? `shard ${shard} did not take the batch`));
      done();
    },
    onBatch: (answers) => {
      clearTimeout(timer);
      if (answers.length !== tasks.length) fail("E_UNAVAILABLE", `shard ${shard} answered ${answers.length} outcomes for ${tasks.length} tasks; retry`);
      else {
        for (const [j, i] of tasks.entries()) {
          outcomes[i] = answers[j]!;
          if (!answers[j]!.ok && doneRoutes[j] !== 0) routes.close(doneRoutes[j]!);
        }
      }
      done();
    },
  });
  const w = conn.writer;
  w.begin(Kind.SUBMIT_BATCH);
  w.u32(upstreamId);
  w.u32(tasks.length);
  for (const [j, i] of tasks.entries()) {
    const start = spans.starts[i]!;
    const end = spans.ends[i]!;
    if ((bytes[start + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_NOTIFY) !== 0) {
      doneRoutes[j] = routes.open({ client, clientRequestId: readU32(bytes, start), awaitsDone: true });
    }
    w.u32(end - start);
    const at = w.length;
    w.rawRange(bytes, start, end);
    w.view.setUint32(at, doneRoutes[j]!, true);
  }
  w.end();
  conn.queueFlush();
  port.forwarded(tasks.length);
}
