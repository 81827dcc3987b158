// Scheduling semantics from the compiled binaries, through a router: DAG
// order, the dead-letter queue, cancel, tags, delays and deadlines.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { resolve } from "node:path";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { Cluster, waitFor } from "./harness.ts";

let cluster: Cluster;
let client: SchedulerClient;
let routerPort = 0;

beforeAll(async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  // The examples' always-fails handler on the first worker only: it alone is leased those tasks.
  cluster.worker([coordinator.port], ["-w", "2", "--handlers", resolve(import.meta.dir, "../../examples/handlers.ts")]);
  cluster.worker([coordinator.port], ["-w", "1", "--tags", "gpu"]);
  routerPort = (await cluster.router([coordinator.port])).port;
  await cluster.workersJoined(routerPort, 2);
  client = await SchedulerClient.connect({ host: "127.0.0.1", port: routerPort });
});

afterAll(async () => {
  client?.close();
  await cluster?.stopAll();
});

test("a 3-level DAG runs level by level", async () => {
  const ids = await client.workflow([
    { type: "sleep", payload: { ms: 30 } },
    { type: "sleep", payload: { ms: 10 }, dependsOn: [{ node: 0 }] },
    { type: "sleep", payload: { ms: 10 }, dependsOn: [{ node: 0 }] },
    { type: "wordcount", payload: new TextEncoder().encode("the end of it"), dependsOn: [{ node: 1 }, { node: 2 }] },
  ]);
  const outcomes = await Promise.all(ids.map((id) => client.wait(id)));
  expect(outcomes.every((o) => o.ok)).toBe(true);
  const info = await Promise.all(ids.map((id) => client.task(id)));
  // Each level finished before the next one was submitted to a worker.
  expect(info[1]!.finishedAt).toBeGreaterThanOrEqual(info[0]!.finishedAt);
  expect(info[2]!.finishedAt).toBeGreaterThanOrEqual(info[0]!.finishedAt);
  expect(info[3]!.finishedAt).toBeGreaterThanOrEqual(Math.max(info[1]!.finishedAt, info[2]!.finishedAt));
  expect(info[3]!.dependsOn).toEqual([ids[1]!, ids[2]!]);
  const cycle = await client.workflow([{ type: "noop", dependsOn: [{ node: 1 }] }, { type: "noop", dependsOn: [{ node: 0 }] }]).catch((e) => e);
  expect((cycle as TaskError).code).toBe("E_CYCLE");
});

test("a task whose handler always throws ends in the DLQ with every attempt's error; requeue and purge", async () => {
  // (A built-in with a bad payload no longer gets this far: the SDK refuses it with E_BAD_REQUEST.)
  const outcome = await client.run("always-fails", undefined, { maxAttempts: 3, backoff: { type: "exponential", delayMs: 10, maxDelayMs: 40 } });
  expect(outcome.ok).toBe(false);
  expect(outcome.attempts).toBe(3);
  const dlq = await client.deadLetters();
  const dead = dlq.tasks.find((t) => t.taskId === outcome.taskId)!;
  expect(dead.state).toBe("failed");
  expect(dead.errors.map((e) => e.attempt)).toEqual([1, 2, 3]);
  for (const e of dead.errors) {
    expect(e.message).toContain("always-fails: this handler never succeeds");
    expect(e.workerId).toBeGreaterThan(0);
    expect(e.at).toBeGreaterThan(0);
  }
  await client.requeue(outcome.taskId);
  const again = await client.wait(outcome.taskId);
  expect(again.attempts).toBe(6); // three more attempts, fencing numbers keep growing
  expect(await client.purgeDeadLetters([outcome.taskId])).toBe(1);
  expect((await client.task(outcome.taskId).catch((e) => e)).code).toBe("E_UNKNOWN_TASK");
});

test("cancel a running task: its handler is aborted and the waiter hears E_CANCELLED", async () => {
  const id = await client.submit("sleep", { ms: 30_000 });
  await waitFor("the task to run", async () => ((await client.task(id)).state === "leased" ? true : undefined));
  const waiting = client.wait(id);
  expect(await client.cancel(id)).toBe("cancelled");
  const outcome = await waiting;
  expect(outcome.ok).toBe(false);
  expect(outcome.error).toContain("E_CANCELLED");
});

test("a task needing a tag runs only on a worker that has it; one nobody has waits, counted", async () => {
  const onGpu = await client.run("noop", undefined, { tags: ["gpu"] });
  expect(onGpu.ok).toBe(true);
  const info = await client.task(onGpu.taskId);
  const stats = await client.clusterStats();
  const gpuWorker = stats.coordinators[0]!.stats!.workers.find((w) => w.tags.includes("gpu"))!;
  expect(gpuWorker.done).toBeGreaterThanOrEqual(1);
  expect(info.tags).toEqual(["gpu"]);
  const stuck = await client.submit("noop", undefined, { tags: ["tpu"] });
  await waitFor("the unmatched task to be counted", async () => ((await client.clusterStats()).coordinators[0]!.stats!.unmatched >= 1 ? true : undefined));
  expect((await client.task(stuck)).state).toBe("queued");
  expect(await client.cancel(stuck)).toBe("cancelled");
});

test("delays hold a task back; a deadline already past fails it with E_DEADLINE", async () => {
  const started = Date.now();
  const delayed = await client.run("noop", undefined, { delayMs: 300 });
  expect(delayed.ok).toBe(true);
  expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  const late = await client.run("noop", undefined, { deadline: Date.now() - 1000, delayMs: 50 });
  expect(late.ok).toBe(false);
  expect(late.error).toContain("E_DEADLINE");
});
