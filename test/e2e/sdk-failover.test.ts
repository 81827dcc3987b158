// The SDK's connect({ servers }) against real processes: a router killed mid-run
// (every task completes, none twice by key), a directly connected coordinator
// changing role (the client stays usable), and every server gone (a rejected
// promise, never a synchronous throw).

import { rejectsNotThrows } from "../support/helpers.ts";
import { afterEach, expect, test } from "bun:test";
import { connect, type Scheduler } from "../../src/sdk/scheduler.ts";
import type { SchedulerError } from "../../src/sdk/errors.ts";
import { Cluster, waitFor } from "./harness.ts";

const TASKS = 400;
/** Small, so a test that goes wrong fails in seconds, not in the default 30. */
const retry = { minDelayMs: 20, maxDelayMs: 500, giveUpAfterMs: 20_000, connectTimeoutMs: 2_000 };

let cluster: Cluster | undefined;
let client: Scheduler | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await cluster?.stopAll();
});

const sum = (stats: Awaited<ReturnType<Cluster["stats"]>>, field: "submitted" | "completed") =>
  stats.coordinators.reduce((s, c) => s + (c.stats?.[field] ?? 0), 0);

test("kill -9 of the router in use mid-run: every task completes, none twice by key", async () => {
  cluster = new Cluster();
  // Few slots, so the run lasts long enough (about a second) for the kill to land in it.
  const { router: doomed, routers } = await cluster.twoShardsBehindRouter({ workerArgs: ["-w", "2", "--thread-concurrency", "4"], routers: 2 });
  const survivor = routers[1]!;
  // random 0: starts on the first server, the doomed router.
  client = await connect({ servers: [`127.0.0.1:${doomed.port}`, `127.0.0.1:${survivor.port}`], retry, random: () => 0 });
  expect(client.server).toBe(`127.0.0.1:${doomed.port}`);

  let done = 0;
  const handles = await Promise.all(Array.from({ length: TASKS }, (_, i) => client!.submit("sleep", { ms: 10 }, { idempotencyKey: `kill-${i}` })));
  const results = Promise.all(handles.map((h) => h.result().then((v) => (done++, v))));
  await waitFor("some tasks done", () => (done >= 20 ? true : undefined));
  expect(done).toBeLessThan(TASKS); // the kill lands mid-run
  doomed.proc.kill("SIGKILL");
  await results;
  expect(done).toBe(TASKS);
  expect(client.server).toBe(`127.0.0.1:${survivor.port}`);

  // Keys seen again give the same ids, and the cluster holds exactly one task per key.
  const again = await Promise.all(handles.map((h) => client!.submit("sleep", { ms: 10 }, { idempotencyKey: h.idempotencyKey })));
  expect(again.map((h) => h.id)).toEqual(handles.map((h) => h.id));
  expect(new Set(handles.map((h) => h.id)).size).toBe(TASKS);
  const stats = await cluster.stats(survivor.port);
  expect(sum(stats, "submitted")).toBe(TASKS);
});

test("run() in flight when the router dies resolves through the other router", async () => {
  cluster = new Cluster();
  const shard0 = await cluster.coordinator(["--shard", "0"]);
  cluster.worker([shard0.port], ["-w", "1"]);
  const doomed = await cluster.router([shard0.port]);
  const survivor = await cluster.router([shard0.port]);
  await cluster.workersJoined(survivor.port, 1);
  client = await connect({ servers: [`127.0.0.1:${doomed.port}`, `127.0.0.1:${survivor.port}`], retry, random: () => 0 });
  const running = Array.from({ length: 50 }, () => client!.run("sleep", { ms: 200 }));
  await waitFor("the tasks submitted", async () => (sum(await cluster!.stats(survivor.port), "submitted") >= 50 ? true : undefined));
  doomed.proc.kill("SIGKILL");
  expect(await Promise.all(running)).toEqual(Array.from({ length: 50 }, () => undefined)); // sleep returns nothing
  expect(sum(await cluster.stats(survivor.port), "submitted")).toBe(50);
});

test("a stopped router (SIGSTOP: no close, no answer) is left after answerTimeoutMs; keyed submits finish once", async () => {
  cluster = new Cluster();
  const shard0 = await cluster.coordinator(["--shard", "0"]);
  cluster.worker([shard0.port], ["-w", "1"]);
  const stopped = await cluster.router([shard0.port]);
  const survivor = await cluster.router([shard0.port]);
  await cluster.workersJoined(stopped.port, 1);
  await cluster.workersJoined(survivor.port, 1);
  client = await connect({ servers: [`127.0.0.1:${stopped.port}`, `127.0.0.1:${survivor.port}`], retry: { ...retry, answerTimeoutMs: 500 }, random: () => 0 });
  stopped.proc.kill("SIGSTOP");
  try {
    const started = Date.now();
    const handles = await Promise.all(Array.from({ length: 20 }, (_, i) => client!.submit("noop", undefined, { idempotencyKey: `stop-${i}` })));
    expect(Date.now() - started).toBeLessThan(5_000);
    await Promise.all(handles.map((h) => h.result()));
    expect(client.server).toBe(`127.0.0.1:${survivor.port}`);
    expect(sum(await cluster.stats(survivor.port), "submitted")).toBe(20);
  } finally {
    stopped.proc.kill("SIGCONT");
  }
});

test("a directly connected coordinator changing role does not close the SDK", async () => {
  cluster = new Cluster();
  const nodes = await cluster.replicas(2);
  cluster.worker(nodes.map((n) => n.port));
  const { primary, backup } = await cluster.pairInSync(nodes);
  // Both replicas given, the primary first: the client uses it until it goes.
  client = await connect({ servers: [`127.0.0.1:${primary.port}`, `127.0.0.1:${backup.port}`], retry, random: () => 0 });
  // Given the backup alone: the ROLE announcing its promotion must not close it (it did, with E_BAD_FRAME).
  const single = await connect({ servers: [`127.0.0.1:${backup.port}`], retry });
  try {
    const before = await client.submit("noop", undefined, { idempotencyKey: "before" });
    primary.proc.kill("SIGTERM"); // hands over: the backup is promoted and announces ROLE to every connection
    await waitFor("the backup's promotion", async () => ((await cluster!.roleOf(backup.port)) === "primary" ? true : undefined));
    expect(single.server).toBe(`127.0.0.1:${backup.port}`);
    expect((await single.submit("noop", undefined, { idempotencyKey: "single" })).id).toBeGreaterThan(0);
    const after = await client.submit("noop", undefined, { idempotencyKey: "after" });
    expect(after.id).not.toBe(before.id);
    expect(client.server).toBe(`127.0.0.1:${backup.port}`);
    expect(await before.result()).toBeUndefined(); // replicated before its ack, so the new primary knows it
  } finally {
    await single.close();
  }
});

test("after every server died, submit() returns a promise that rejects with E_UNAVAILABLE", async () => {
  cluster = new Cluster();
  const shard0 = await cluster.coordinator(["--shard", "0"]);
  const router = await cluster.router([shard0.port]);
  await waitFor("the router to reach its coordinator", async () => ((await cluster!.stats(router.port)).coordinators[0]?.reachable ? true : undefined));
  client = await connect({ servers: [`127.0.0.1:${router.port}`], retry: { ...retry, giveUpAfterMs: 1_000 } });
  await client.submit("noop");
  await cluster.stopAll();
  const promise = rejectsNotThrows(() => client!.submit("noop"));
  const started = Date.now();
  const refused = (await promise.catch((e: unknown) => e)) as SchedulerError;
  expect(refused.code).toBe("E_UNAVAILABLE");
  expect(Date.now() - started).toBeLessThan(5_000);
  await client.close();
  const afterClose = (await client.submit("noop").catch((e: unknown) => e)) as SchedulerError;
  expect(afterClose.code).toBe("E_SHUTTING_DOWN");
});
