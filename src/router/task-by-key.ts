// The router's answer to TASK_QUERY by idempotency key. Every known shard is
// asked, because which shard took a key depended on the shards the router
// knew when the task was submitted; this turns their answers into one. "No
// such task" tells a client it may submit again, so it needs every shard's word,
// including the word of shards the router has not heard of yet (router.ts askEveryShard).

import { writeControl } from "../protocol/codec.ts";
import { Kind } from "../protocol/messages.ts";
import type { Connection } from "../net/connection.ts";

export interface ShardAnswer {
  kind: number;
  body: Record<string, unknown>;
}

/** The shard's TASK_INFO that found the key; else unknown only when every shard said so (one answer per known shard). */
export function answerTaskByKey(conn: Connection, requestId: number, idempotencyKey: string, answers: readonly ShardAnswer[]): void {
  if (!conn.writable()) return;
  const found = answers.find((a) => a.kind === Kind.TASK_INFO);
  if (found !== undefined) {
    writeControl(conn.writer, Kind.TASK_INFO, { ...found.body, requestId });
    return conn.queueFlush();
  }
  if (answers.length === 0) return conn.sendError(requestId, "E_UNAVAILABLE", "no shard is known yet; retry");
  // A shard that did not answer (no primary, link down, too slow) may hold it.
  const failed = answers.find((a) => a.body.code !== "E_UNKNOWN_TASK");
  if (failed !== undefined) return conn.sendError(requestId, "E_UNAVAILABLE", `a shard did not answer: ${String(failed.body.message)}; retry`);
  conn.sendError(requestId, "E_UNKNOWN_TASK", `no task with idempotency key ${JSON.stringify(idempotencyKey)} (never submitted, or evicted after retention)`);
}
