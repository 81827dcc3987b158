// SUBMIT_BATCH through a router in front of two shards, from the compiled
// binaries: the router splits a batch by shard and joins the answers; every
// accepted task completes; a task refused (by the router or by its shard) is
// refused in its own slot while the rest go ahead; an idempotency key used
// twice in one batch makes one task; REST arrays take the same path.

import { afterEach, expect, test } from "bun:test";
import { makeTaskId, shardOfTask } from "../../src/core/task.ts";
import { FrameWriter } from "../../src/protocol/codec.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { SchedulerClient, TaskError, type BatchTask } from "../../src/sdk/client.ts";
import { Cluster, freePort, parseReport, waitFor } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

test("a batch through the router spans both shards; refusals and repeated keys are per task; every accepted task completes", async () => {
  cluster = new Cluster();
  const httpPort = freePort();
  const { router } = await cluster.twoShardsBehindRouter({ routerArgs: ["--http-port", String(httpPort)] });
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });

  const tasks: BatchTask[] = Array.from({ length: 300 }, (_, i) => ({ type: "noop", options: { idempotencyKey: `batch-${i}` } }));
  tasks.push({ type: "noop", options: { idempotencyKey: "batch-7" } }); // 300: a repeat of task 7's key
  tasks.push({ type: "noop", options: { dependsOn: [makeTaskId(0, 999_999)] } }); // 301: no such parent on shard 0
  tasks.push({ type: "noop", options: { dependsOn: [makeTaskId(0, 1), makeTaskId(1, 1)] } }); // 302: parents on two shards
  tasks.push({ type: "sleep", payload: "abc" }); // 303: refused by the client before it is sent
  const outcomes = await client.submitBatch(tasks);

  expect(outcomes).toHaveLength(304);
  const accepted = outcomes.slice(0, 300).map((o) => (o.ok ? o.taskId : -1));
  expect(accepted.every((id) => id > 0)).toBe(true);
  expect(new Set(accepted.map(shardOfTask))).toEqual(new Set([0, 1]));
  expect(new Set(accepted).size).toBe(300);
  expect(outcomes[300]).toEqual({ ok: true, taskId: accepted[7]! });
  expect(outcomes[301]).toMatchObject({ ok: false, code: "E_UNKNOWN_TASK" });
  expect(outcomes[302]).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });
  expect(outcomes[303]).toMatchObject({ ok: false, code: "E_BAD_REQUEST" });

  const ended = await Promise.all(accepted.map((id) => client.wait(id)));
  expect(ended.every((o) => o.ok)).toBe(true);
  const stats = await cluster.stats(router.port);
  expect(stats.coordinators.reduce((n, c) => n + (c.stats?.completed ?? 0), 0)).toBe(300);

  // submitMany: all or a BatchSubmitError naming the refused task; the accepted ones exist.
  const ids = await client.submitMany([{ type: "noop" }, { type: "noop", options: { idempotencyKey: "batch-0" } }]);
  expect(ids[1]).toBe(accepted[0]!);
  const refused = await client.submitMany([{ type: "noop" }, { type: "noop", options: { dependsOn: [makeTaskId(1, 999_999)] } }]).catch((e) => e);
  expect(refused).toBeInstanceOf(TaskError);
  expect(refused.code).toBe("E_UNKNOWN_TASK");
  expect(refused.outcomes[0].ok).toBe(true);

  // REST: an array is one batch; a partly refused one says which task was refused and which exist.
  const base = `http://127.0.0.1:${httpPort}`;
  await waitFor("the HTTP port", async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined));
  const rest = await fetch(`${base}/v1/tasks`, { method: "POST", body: JSON.stringify([{ type: "noop", idempotencyKey: "batch-1" }, { type: "noop", dependsOn: [makeTaskId(0, 999_999)] }]) });
  expect(rest.status).toBe(404);
  const body = (await rest.json()) as { error: { code: string }; tasks: Array<{ taskId?: number; error?: { code: string } }> };
  expect(body.error.code).toBe("E_UNKNOWN_TASK");
  expect(body.tasks[0]).toEqual({ taskId: accepted[1]! });
  expect(body.tasks[1]!.error!.code).toBe("E_UNKNOWN_TASK");
  client.close();
}, 60_000);

test("a malformed batch is refused on its own request; the connection and the next batch go on", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  const router = await cluster.router([coordinator.port]);
  for (const port of [coordinator.port, router.port]) {
    const client = await SchedulerClient.connect({ host: "127.0.0.1", port });
    const refusal = await new Promise<{ code: string }>((resolve) => {
      // A batch of 0 tasks, and one that claims 20,000 (over SUBMIT_BATCH_TASKS_MAX), written raw.
      const raw = (client as unknown as { conn: { writer: FrameWriter; queueFlush(): void } }).conn;
      raw.writer.begin(Kind.SUBMIT_BATCH);
      raw.writer.u32(0x7fff0001);
      raw.writer.u32(0);
      raw.writer.end();
      raw.writer.begin(Kind.SUBMIT_BATCH);
      raw.writer.u32(0x7fff0002);
      raw.writer.u32(20_000);
      raw.writer.end();
      raw.queueFlush();
      const pending = (client as unknown as { pending: Map<number, { resolve(v: unknown): void; reject(e: Error): void; waitsForDone: boolean }> }).pending;
      const errors: string[] = [];
      const hear = (e: Error) => {
        errors.push((e as TaskError).code);
        if (errors.length === 2) resolve({ code: errors.join(",") });
      };
      pending.set(0x7fff0001, { resolve: () => hear(new TaskError("E_BAD_FRAME", "answered")), reject: hear, waitsForDone: false });
      pending.set(0x7fff0002, { resolve: () => hear(new TaskError("E_BAD_FRAME", "answered")), reject: hear, waitsForDone: false });
    });
    expect(refusal.code).toBe("E_BAD_REQUEST,E_TOO_LARGE");
    expect(await client.submitMany([{ type: "noop" }, { type: "noop" }])).toHaveLength(2);
    client.close();
  }
}, 60_000);

test("client --batch through the router: closed loop, open loop and --submit-only end every task once", async () => {
  cluster = new Cluster();
  const { router } = await cluster.twoShardsBehindRouter();
  const closed = parseReport(await cluster.client(["-p", String(router.port), "-n", "3000", "-c", "100", "--batch", "32", "--json"]));
  expect({ completed: closed.completed, failed: closed.failed }).toEqual({ completed: 3000, failed: 0 });
  const open = parseReport(await cluster.client(["-p", String(router.port), "--rate", "2000", "--duration-s", "1", "--batch", "16", "--json"]));
  expect({ completed: open.completed, failed: open.failed }).toEqual({ completed: 2000, failed: 0 });
  const ingest = parseReport(await cluster.client(["-p", String(router.port), "-n", "5000", "-c", "1000", "--batch", "250", "--submit-only", "--json"]));
  expect({ completed: ingest.completed, failed: ingest.failed }).toEqual({ completed: 5000, failed: 0 });
  expect(ingest.clientCpuUsPerTask).toBeGreaterThan(0);
  // Every task once (keys make a retry no duplicate): 3,000 + 2,000 + 5,000 submitted, the first 5,000 run.
  await waitFor("every run task completed", async () => {
    const stats = await cluster.stats(router.port);
    const total = (f: "submitted" | "completed") => stats.coordinators.reduce((n, c) => n + (c.stats?.[f] ?? 0), 0);
    return total("submitted") === 10_000 && total("completed") >= 5000 ? true : undefined;
  });
}, 60_000);

test("a shard without a primary fails only its own tasks of a batch, each with a retryable error; the rest are accepted", async () => {
  cluster = new Cluster();
  const { shard1, router } = await cluster.twoShardsBehindRouter();
  shard1.proc.kill("SIGKILL");
  await waitFor("the router to lose shard 1", async () => {
    const stats = await cluster.stats(router.port);
    return stats.coordinators.filter((c) => !c.reachable).length === 1 ? true : undefined;
  });
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  const outcomes = await client.submitBatch(Array.from({ length: 60 }, (_, i) => ({ type: "noop", options: { idempotencyKey: `half-${i}` } })));
  const accepted = outcomes.filter((o) => o.ok);
  const refused = outcomes.filter((o) => !o.ok) as Array<{ code: string }>;
  expect(accepted.length).toBeGreaterThan(0);
  expect(accepted.every((o) => shardOfTask((o as { taskId: number }).taskId) === 0)).toBe(true);
  expect(refused.length).toBeGreaterThan(0);
  expect(new Set(refused.map((o) => o.code))).toEqual(new Set(["E_UNAVAILABLE"]));
  client.close();
}, 60_000);
