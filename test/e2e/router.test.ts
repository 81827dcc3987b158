// Router behaviour from the compiled binaries: clients failing over between
// routers, and clear errors for unreachable coordinators, unknown shards and
// a wrong protocol version.

import { afterEach, expect, test } from "bun:test";
import { ShardMap } from "../../src/core/shard-map.ts";
import { makeTaskId, shardOfTask } from "../../src/core/task.ts";
import { FrameWriter, writeControl } from "../../src/protocol/codec.ts";
import { Kind } from "../../src/protocol/messages.ts";
import { SchedulerClient, TaskError } from "../../src/sdk/client.ts";
import { Cluster, freePort, parseReport, waitFor } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

test("a client given two routers finishes every task when one router is killed mid-run", async () => {
  cluster = new Cluster();
  const { router: doomed, routers } = await cluster.twoShardsBehindRouter({ routers: 2 });
  const survivor = routers[1]!;
  const servers = `127.0.0.1:${doomed.port},127.0.0.1:${survivor.port}`;
  const run = cluster.client(["-s", servers, "--connections", "2", "-n", "20000", "-c", "64", "-t", "sleep", "--duration-ms", "1", "--json"]);
  await waitFor("the run to be under way", async () => {
    const stats = await cluster.stats(survivor.port);
    const done = stats.coordinators.reduce((s, c) => s + (c.stats?.completed ?? 0), 0);
    return done > 3000 ? true : undefined;
  });
  doomed.proc.kill("SIGKILL");
  const result = await run;
  const report = parseReport(result);
  expect(report.completed).toBe(20000);
  expect(report.failed).toBe(0);
  expect(report.retried).toBeGreaterThan(0);
  expect(result.code).toBe(0);
  // Retries under the same idempotency key created no duplicates.
  const stats = await cluster.stats(survivor.port);
  const submitted = stats.coordinators.reduce((s, c) => s + (c.stats?.submitted ?? 0), 0);
  expect(submitted).toBe(20000);
});

test("an unreachable coordinator shows in stats with its error; its shard is refused clearly", async () => {
  cluster = new Cluster();
  const live = await cluster.coordinator(["--shard", "0"]);
  // Port 1 on loopback: nothing listens there.
  const router = await cluster.server("router", ["-s", `127.0.0.1:${live.port},127.0.0.1:1`, "--log-level", "error"]);
  const stats = await waitFor("stats with the live coordinator", async () => {
    const s = await cluster.stats(router.port);
    return s.coordinators.some((c) => c.reachable) ? s : undefined;
  });
  const dead = stats.coordinators.find((c) => c.address === "127.0.0.1:1")!;
  expect(dead.reachable).toBe(false);
  expect(dead.error).toContain("connect");

  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  const error = await client.task(makeTaskId(7, 1)).catch((e) => e);
  expect(error).toBeInstanceOf(TaskError);
  expect((error as TaskError).code).toBe("E_UNKNOWN_SHARD");
  client.close();
});

test("a client speaking another protocol version is refused with E_BAD_VERSION", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  const router = await cluster.router([coordinator.port]);
  const w = new FrameWriter();
  writeControl(w, Kind.HELLO, { role: "client", version: 99, nodeId: "time-traveller" });
  const frame = w.finish().slice();
  let received = "";
  const closed = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: router.port,
    socket: {
      data(_s, chunk) {
        received += new TextDecoder().decode(chunk);
      },
      close: () => closed.resolve(),
      error: () => closed.resolve(),
    },
  });
  socket.write(frame);
  const timer = setTimeout(() => socket.end(), 5000);
  await closed.promise;
  clearTimeout(timer);
  expect(received).toContain("E_BAD_VERSION");
  expect(received).toContain("version 99");
});

test("workers cannot connect to a router", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  const router = await cluster.router([coordinator.port]);
  const worker = cluster.worker([router.port], ["-w", "1"]);
  await waitFor("the worker to be refused", () => (worker.output().includes("E_BAD_HELLO") ? true : undefined));
  const report = parseReport(await cluster.client(["-p", String(router.port), "-n", "10", "--json", "--submit-attempts", "1", "--deadline-s", "2"]));
  // No worker serves the coordinator: nothing completes, and the client says so instead of hanging.
  expect(report.completed).toBe(0);
});

test("through a router, a task goes to the shard of the tasks it depends on", async () => {
  cluster = new Cluster();
  const { router } = await cluster.twoShardsBehindRouter();
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  try {
    const parents = await Promise.all(Array.from({ length: 20 }, (_, i) => client.submit("sleep", { ms: 20 }, { idempotencyKey: `parent-${i}` })));
    expect(new Set(parents.map(shardOfTask)).size).toBe(2);
    const children = await Promise.all(parents.map((p, i) => client.submit("noop", undefined, { idempotencyKey: `child-${i}`, dependsOn: [p] })));
    for (let i = 0; i < parents.length; i++) expect(shardOfTask(children[i]!)).toBe(shardOfTask(parents[i]!));
    const outcomes = await Promise.all(children.map((c) => client.wait(c)));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    for (const p of parents) expect((await client.task(p)).state).toBe("completed");
    // Parents on two shards: the task goes to its first parent's shard (test/e2e/cross-shard.test.ts covers the wait).
    const [a, b] = [parents.find((p) => shardOfTask(p) === 0)!, parents.find((p) => shardOfTask(p) === 1)!];
    expect(shardOfTask(await client.submit("noop", undefined, { dependsOn: [b, a] }))).toBe(1);
  } finally {
    client.close();
  }
});

/** An idempotency key that hashes to `shard` among `count` shards. */
function keyOnShard(shard: number, count: number, prefix: string): string {
  const map = new ShardMap(count);
  for (let i = 0; ; i++) {
    const bytes = new TextEncoder().encode(`${prefix}-${i}`);
    if (map.pick(bytes, 0, bytes.length) === shard) return `${prefix}-${i}`;
  }
}

test("with --shards, a keyed task waits for its own shard (refused as retryable) and never lands on another, in a batch too", async () => {
  cluster = new Cluster();
  const shard0 = await cluster.coordinator(["--shard", "0"]);
  const shard1Port = freePort(); // shard 1 is not up yet: the router starts before it
  const router = await cluster.router([shard0.port, shard1Port], ["--shards", "2"]);
  const client = await SchedulerClient.connect(`127.0.0.1:${router.port}`);
  try {
    await waitFor("the router to know shard 0", async () => ((await client.clusterStats()).coordinators.some((c) => c.stats?.shard === 0) ? true : undefined));
    const [k0, k1] = [keyOnShard(0, 2, "a"), keyOnShard(1, 2, "b")];
    const first = await client.submit("noop", {}, { idempotencyKey: k0 });
    expect(shardOfTask(first)).toBe(0);
    // Before the fix this key went to shard 0 as well (the only shard known), and a retry once
    // shard 1 was up made a second task there.
    const refused = await client.submit("noop", {}, { idempotencyKey: k1 }).then(() => undefined, (err: TaskError) => err);
    expect(refused?.code).toBe("E_UNAVAILABLE");
    expect(refused?.message).toContain("--shards 2");
    const batch = await client.submitMany([{ type: "noop", options: { idempotencyKey: keyOnShard(1, 2, "c") } }, { type: "noop", options: { idempotencyKey: keyOnShard(0, 2, "d") } }]).then(() => undefined, (err: Error) => err);
    expect(String(batch)).toContain("E_UNAVAILABLE");
    // A workflow goes by its first key too (before the fix: round-robin, so a retry could land elsewhere).
    const flow = [{ type: "noop", idempotencyKey: keyOnShard(1, 2, "w") }, { type: "noop", dependsOn: [{ node: 0 }] }];
    const flowRefused = await client.workflow(flow).then(() => undefined, (err: TaskError) => err);
    expect(flowRefused?.code).toBe("E_UNAVAILABLE");
    // A lookup by key cannot say "never submitted" while the key's shard has not answered.
    const lookup = await client.taskByKey(k1).then(() => undefined, (err: TaskError) => err);
    expect(lookup?.code).toBe("E_UNAVAILABLE");

    await cluster.coordinator(["--shard", "1", "-p", String(shard1Port)]);
    const second = await waitFor("shard 1 to take its key", () => client.submit("noop", {}, { idempotencyKey: k1 }).then((id) => id, () => undefined));
    expect(shardOfTask(second)).toBe(1);
    expect(await client.submit("noop", {}, { idempotencyKey: k0 })).toBe(first);
    const flowIds = await client.workflow(flow);
    expect(flowIds.map(shardOfTask)).toEqual([1, 1]);
    expect(await client.workflow(flow)).toEqual(flowIds); // the retry finds the first submission's tasks
    const submitted = (await client.clusterStats()).coordinators.map((c) => [c.stats?.shard, c.stats?.submitted]);
    expect(submitted.sort()).toEqual([[0, 2], [1, 3]]); // k0 and d on shard 0; k1 and the workflow's two on shard 1: nothing twice
  } finally {
    client.close();
  }
  // A router without --shards that learns several says what it risks.
  const plain = await cluster.router([shard0.port, shard1Port]);
  await waitFor("the warning", () => (plain.output().includes("several shards and no --shards") ? true : undefined));
}, 60_000);
