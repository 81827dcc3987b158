// The router's SUBMIT_BATCH split (router/batch-route.ts) with fake links and
// a fake client: each task of a part that fails (its link lost, or no answer in
// time) is answered once, in the joined SUBMITTED_BATCH, never also by an ERROR
// on its own request id; a part left unanswered ends instead of holding its
// routes and the client for ever.

import { expect, test } from "bun:test";
import { routeSubmitBatch, type BatchRouterPort } from "../../src/router/batch-route.ts";
import { Routes } from "../../src/router/routes.ts";
import { ShardMap } from "../../src/core/shard-map.ts";
import type { Connection } from "../../src/net/connection.ts";
import { FrameWriter, forEachMessage, Reader } from "../../src/protocol/codec.ts";
import { readSubmittedBatch, writeSubmitBatch } from "../../src/protocol/batch-codec.ts";
import { Kind, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_NOTIFY, type BatchItemOutcome, type SubmitFields } from "../../src/protocol/messages.ts";

function fakeClient() {
  const writer = new FrameWriter(1024);
  const errors: Array<{ requestId: number; code: string }> = [];
  let waits = 0;
  const raw = {
    writer, queueFlush() {}, writable: () => true,
    sendError: (requestId: number, code: string) => void errors.push({ requestId, code }),
    idle: { startWait: () => void waits++, endWait: () => void waits-- },
  };
  /** The SUBMITTED_BATCHes written to the client so far. */
  const batches = (): BatchItemOutcome[][] => {
    const out: BatchItemOutcome[][] = [];
    const bytes = writer.finish();
    for (let at = 0; at < bytes.length; ) {
      const length = new DataView(bytes.buffer, bytes.byteOffset + at).getUint32(0, true);
      forEachMessage(bytes.subarray(at + 4, at + 4 + length), new Reader(), (kind, r) => {
        if (kind === Kind.SUBMITTED_BATCH) out.push(readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX).outcomes);
      });
      at += 4 + length;
    }
    writer.reset();
    return out;
  };
  return { conn: raw as unknown as Connection, errors, batches, waits: () => waits };
}

/** Two shards, each primary a Routes and a connection that only buffers; `partTimeoutMs` as given. */
function twoShards(partTimeoutMs: number) {
  const shardMap = new ShardMap();
  shardMap.add(0);
  shardMap.add(1);
  const upstreams = [0, 1].map(() => ({ routes: new Routes(), conn: { writer: new FrameWriter(1024), queueFlush() {} } as unknown as Connection }));
  const port: BatchRouterPort = { shardMap: () => shardMap, primary: (shard) => upstreams[shard]!, forwarded: () => {}, partTimeoutMs };
  return { shardMap, upstreams, port };
}

/** Two notify tasks, the first keyed to shard 0 and the second to shard 1, as the client's SUBMIT_BATCH (request id 1; tasks 2 and 3). */
function batchAcrossShards(shardMap: ShardMap): Reader {
  const keyFor = (shard: number) => {
    for (let i = 0; ; i++) if (shardMap.pick(new TextEncoder().encode(`k${i}`), 0, `k${i}`.length) === shard) return `k${i}`;
  };
  const task = (requestId: number, key: string): SubmitFields => ({
    requestId, priority: 1, flags: SUBMIT_FLAG_NOTIFY, maxAttempts: 0, timeoutMs: 0, type: "noop", idempotencyKey: key, payload: new Uint8Array(0),
  });
  const w = new FrameWriter(1024);
  writeSubmitBatch(w, 1, [task(2, keyFor(0)), task(3, keyFor(1))]);
  const body = w.finish().subarray(4);
  let reader: Reader | undefined;
  forEachMessage(body, new Reader(), (_kind, r) => (reader = new Reader().reset(r.bytes, r.pos, r.end)));
  return reader!;
}

/** The upstream request id of the part a shard was sent (its only route not waiting for a TASK_DONE). */
function partId(routes: Routes): number {
  for (let id = 1; id < 10; id++) if (routes.get(id)?.onBatch !== undefined) return id;
  throw new Error("no batch part");
}

test("a part whose link is lost fails its tasks in the joined answer only, not also by an ERROR on each task's id", () => {
  const { shardMap, upstreams, port } = twoShards(60_000);
  const client = fakeClient();
  routeSubmitBatch(port, client.conn, batchAcrossShards(shardMap));
  upstreams[1]!.routes.failAll("coordinator lost; retry"); // as Router.failRoutes does
  expect(upstreams[1]!.routes.size).toBe(0);
  const part0 = partId(upstreams[0]!.routes);
  upstreams[0]!.routes.close(part0)!.onBatch!([{ ok: true, taskId: 77 }]);
  expect(client.errors).toEqual([]);
  const [answer] = client.batches();
  expect(answer).toEqual([{ ok: true, taskId: 77 }, { ok: false, code: "E_UNAVAILABLE", message: "coordinator lost; retry" }]);
});

test("a part left unanswered fails its tasks as E_UNAVAILABLE after partTimeoutMs and closes its routes", async () => {
  const { shardMap, upstreams, port } = twoShards(20);
  const client = fakeClient();
  routeSubmitBatch(port, client.conn, batchAcrossShards(shardMap));
  const part0 = partId(upstreams[0]!.routes);
  upstreams[0]!.routes.close(part0)!.onBatch!([{ ok: true, taskId: 77 }]);
  expect(client.batches()).toEqual([]); // shard 1 has not answered
  await Bun.sleep(100);
  const [answer] = client.batches();
  expect(answer?.[0]).toEqual({ ok: true, taskId: 77 });
  expect(answer?.[1]).toMatchObject({ ok: false, code: "E_UNAVAILABLE" });
  expect(upstreams[1]!.routes.size).toBe(0);
  expect(upstreams[0]!.routes.size).toBe(1); // task 2 still waits for its TASK_DONE, however long it runs
  expect(client.errors).toEqual([]);
});
