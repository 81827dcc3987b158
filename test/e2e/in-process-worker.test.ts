// In-process workers (createWorker): handlers that are this test's own functions
// run tasks submitted through the SDK, typed end to end; close() drains: a task
// running at close time completes, or is retried on another worker, never lost.
// Given a module path instead, the handlers run on executor threads.

import { afterAll, beforeAll, expect, test } from "bun:test";
import { resolve } from "node:path";
import { connect, createWorker, type InProcessWorker, type Scheduler } from "../../src/sdk/index.ts";
import { Cluster, waitFor } from "./harness.ts";

interface Tasks {
  double: { payload: { n: number }; result: { n: number; by: string } };
  slow: { payload: { ms: number }; result: string };
}

/** 500 tiny tasks through one router and coordinator: seconds even on a loaded machine. */
const TASKS = 500;
const RUN_MS = 60_000;

const cluster = new Cluster();
let router = 0;
let coordinator = 0;
let scheduler: Scheduler<Tasks>;
const workers: InProcessWorker[] = [];

/** An in-process worker of this test process, named so a result says who ran it. */
async function startWorker(name: string): Promise<InProcessWorker> {
  const worker = await createWorker<Tasks>({
    servers: [`127.0.0.1:${coordinator}`],
    nodeId: name,
    concurrency: 16,
    handlers: {
      double: ({ n }) => ({ n: n * 2, by: name }),
      slow: async ({ ms }, ctx) => {
        await Bun.sleep(ms);
        return `${name} attempt ${ctx.attempt}`;
      },
    },
  });
  workers.push(worker);
  return worker;
}

beforeAll(async () => {
  coordinator = (await cluster.coordinator(["--tick-ms", "20"])).port;
  router = (await cluster.router([coordinator])).port;
  scheduler = await connect<Tasks>({ servers: [`127.0.0.1:${router}`], retry: { giveUpAfterMs: 10_000 } });
});

afterAll(async () => {
  await scheduler?.close();
  await Promise.all(workers.map((w) => w.close(0)));
  await cluster.stopAll();
});

test("an in-process worker runs 500 tasks of its own type with its handler's results", async () => {
  const worker = await startWorker("alpha");
  expect(worker.types).toContain("double");
  expect(worker.types).toContain("noop"); // the built-ins too
  await cluster.workersJoined(router, 1);
  const results = await Promise.all(Array.from({ length: TASKS }, (_, n) => scheduler.run("double", { n }, { maxAttempts: 1 })));
  results.forEach((r, n) => expect(r).toEqual({ n: 2 * n, by: "alpha" }));
  expect(worker.counters.done).toBe(TASKS);
  expect(worker.running).toBe(0);
}, RUN_MS);

test("close() lets the running task finish, then takes nothing new", async () => {
  const worker = workers[0]!;
  const handle = await scheduler.submit("slow", { ms: 500 }, { maxAttempts: 1 });
  await waitFor("the slow task to start", () => (worker.running > 0 ? true : undefined));
  const startedAt = performance.now();
  await worker.close(10_000);
  // close() resolved only after the task ran to its end, and its result went out.
  expect(performance.now() - startedAt).toBeGreaterThan(300);
  expect(await handle.result()).toBe("alpha attempt 1");
  expect(worker.running).toBe(0);
  // Nothing leases on a closed worker: a new task waits for one that can run it.
  const later = await scheduler.submit("double", { n: 21 });
  const beta = await startWorker("beta");
  expect(await later.result()).toEqual({ n: 42, by: "beta" });
  expect(beta.counters.done).toBeGreaterThanOrEqual(1);
}, RUN_MS);

test("a task still running when close() gives up is retried on another worker, not lost", async () => {
  const beta = workers[1]!;
  const gamma = await startWorker("gamma");
  await beta.close(10_000); // gamma alone takes the next task
  const handle = await scheduler.submit("slow", { ms: 3_000 }, { maxAttempts: 3 });
  await waitFor("the slow task to start on gamma", () => (gamma.running > 0 ? true : undefined));
  const delta = await startWorker("delta");
  await gamma.close(50); // gives up on the running task: its lease ends and it is retried
  expect(await handle.result()).toBe("delta attempt 2");
  expect(delta.counters.done).toBe(1);
}, RUN_MS);

test("given a module path, the handlers run on executor threads; a bad module rejects", async () => {
  await Promise.all(workers.map((w) => w.close(0)));
  const threaded = await createWorker<{ add: { payload: { a: number; b: number }; result: number } }>({
    servers: [`127.0.0.1:${coordinator}`],
    handlers: resolve(import.meta.dir, "fixtures/counting-handlers.ts"),
    threads: 2,
    concurrency: 8,
  });
  workers.push(threaded);
  expect(threaded.types).toContain("add");
  const untyped = scheduler as unknown as Scheduler; // "add" is not in this file's Tasks
  const sums = await Promise.all(Array.from({ length: 50 }, (_, i) => untyped.run("add", { a: i, b: 1 })));
  expect(sums).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  await threaded.close(10_000);
  await expect(createWorker({ servers: [`127.0.0.1:${coordinator}`], handlers: resolve(import.meta.dir, "fixtures/no-functions.ts") })).rejects.toThrow("exports no handler functions");
}, RUN_MS);
