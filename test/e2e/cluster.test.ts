// End to end from the compiled binaries: coordinator + worker + client, and
// two shards behind a router. Each test starts its own processes on free ports.

import { afterEach, describe, expect, test } from "bun:test";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { shardOfTask } from "../../src/core/task.ts";
import { Cluster, parseReport, waitFor } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

async function singleShard(workerArgs: string[] = ["-w", "2"]) {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], workerArgs);
  await cluster.workersJoined(coordinator.port, 1);
  return coordinator.port;
}

describe("one coordinator, one worker", () => {
  test("20,000 noop tasks all complete", async () => {
    const port = await singleShard();
    const run = await cluster.client(["-p", String(port), "-n", "20000", "-c", "64", "-t", "noop", "--json"]);
    const report = parseReport(run);
    expect(report.completed).toBe(20000);
    expect(report.failed).toBe(0);
    expect(report.retried).toBe(0);
    expect(run.code).toBe(0);
    for (const key of ["min", "avg", "p50", "p95", "p99", "max"]) expect(typeof report.latencyMs[key]).toBe("number");
    expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p99);
    expect(report.throughput).toBeGreaterThan(0);
  });

  test("20,000 mixed tasks all complete", async () => {
    const port = await singleShard();
    const run = await cluster.client(["-p", String(port), "-n", "20000", "-c", "64", "-t", "mixed", "--json"]);
    const report = parseReport(run);
    expect(report.completed).toBe(20000);
    expect(report.failed).toBe(0);
    expect(run.code).toBe(0);
  });

  test("distributed word count equals the corpus's true count", async () => {
    const port = await singleShard();
    const run = await cluster.client(["-p", String(port), "-n", "2000", "-c", "64", "-t", "wordcount", "--chunk-words", "300", "--json"]);
    const report = parseReport(run);
    expect(report.completed).toBe(2000);
    expect(report.wordCountExpected).toBe(2000 * 300);
    expect(report.wordCount).toBe(report.wordCountExpected);
    expect(run.code).toBe(0);
  });

  test("task status by id, and a clear error for an unknown id", async () => {
    const port = await singleShard();
    const client = await SchedulerClient.connect({ host: "127.0.0.1", port });
    const outcome = await client.run("wordcount", new TextEncoder().encode("three little words"));
    expect(outcome.ok).toBe(true);
    client.close();
    const status = await cluster.client(["status", String(outcome.taskId), "-p", String(port)]);
    expect(status.code).toBe(0);
    const info = JSON.parse(status.stdout);
    expect(info.state).toBe("completed");
    expect(info.type).toBe("wordcount");
    const missing = await cluster.client(["status", "999999", "-p", String(port)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("E_UNKNOWN_TASK");
  });

  test("a task type no worker has waits, counted unmatched, burning no attempt, until cancelled", async () => {
    const port = await singleShard();
    const client = await SchedulerClient.connect({ host: "127.0.0.1", port });
    try {
      const taskId = await client.submit("no-such-type", undefined, { maxAttempts: 2 });
      await waitFor("the task to be counted unmatched", async () => ((await client.clusterStats()).coordinators[0]!.stats!.unmatched >= 1 ? true : undefined));
      const info = await client.task(taskId);
      expect([info.state, info.attempt]).toEqual(["queued", 0]);
      expect(await client.cancel(taskId)).toBe("cancelled");
    } finally {
      client.close();
    }
  });
});

describe("router with two shards", () => {
  test("20,000 tasks spread over both shards, status by id through the router", async () => {
    cluster = new Cluster();
    const shard0 = await cluster.coordinator(["--shard", "0"]);
    const shard1 = await cluster.coordinator(["--shard", "1"]);
    // Two workers, each serving both shards.
    cluster.worker([shard0.port, shard1.port], ["-w", "1"]);
    cluster.worker([shard0.port, shard1.port], ["-w", "1"]);
    const router = await cluster.router([shard1.port, shard0.port]);
    await cluster.workersJoined(router.port, 4);

    const run = await cluster.client(["-p", String(router.port), "-n", "20000", "-c", "64", "-t", "noop", "--json"]);
    const report = parseReport(run);
    expect(report.completed).toBe(20000);
    expect(report.failed).toBe(0);
    // A healthy cluster refuses nothing: retries here once hid a scheduler crash.
    expect(report.retried).toBe(0);

    const stats = await cluster.stats(router.port);
    const byShard = new Map(stats.coordinators.map((c) => [c.stats!.shard, c.stats!.completed]));
    for (const shard of [0, 1]) {
      const share = byShard.get(shard)! / 20000;
      expect(share).toBeGreaterThanOrEqual(0.4);
      expect(share).toBeLessThanOrEqual(0.6);
    }

    const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => client.submit("noop", undefined, { idempotencyKey: `status-${i}` })));
    expect(new Set(ids.map(shardOfTask)).size).toBe(2);
    for (const id of ids) {
      const info = await client.task(id);
      expect(info.taskId).toBe(id);
      expect(["queued", "leased", "completed"]).toContain(info.state);
    }
    client.close();
  });

  test("a retried submission with the same idempotency key returns the same task", async () => {
    cluster = new Cluster();
    const shard0 = await cluster.coordinator(["--shard", "0"]);
    const shard1 = await cluster.coordinator(["--shard", "1"]);
    const router = await cluster.router([shard0.port, shard1.port]);
    // The key may hash to either shard: wait until the router has both primaries (it answers
    // E_UNKNOWN_SHARD for a shard it has not heard of yet).
    await waitFor("the router to reach both shards' primaries", async () => {
      const stats = await cluster.stats(router.port);
      return stats.coordinators.length === 2 && stats.coordinators.every((c) => c.stats?.primary === true) ? true : undefined;
    });
    const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
    const first = await client.submit("noop", undefined, { idempotencyKey: "order-42" });
    const again = await client.submit("noop", undefined, { idempotencyKey: "order-42" });
    expect(again).toBe(first);
    client.close();
  });
});
