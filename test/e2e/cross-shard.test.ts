// Dependencies across shards from the compiled binaries: a task on one shard
// waits for a parent on another; the router settles the wait (statelessly, so a
// restarted router picks it up), a failed parent fails its dependant, and an
// unknown parent is refused at submission.

import { afterEach, expect, test } from "bun:test";
import { shardOfTask } from "../../src/core/task.ts";
import { SchedulerClient, TaskError, type SubmitOptions } from "../../src/sdk/client.ts";
import { Cluster, freePort, waitFor } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

/** Submits until it has a task of the given type on each of shards 0 and 1 (keys spread tasks over shards). */
async function onEachShard(client: SchedulerClient, type: string, payload: unknown, tag: string, options: SubmitOptions = {}): Promise<[number, number]> {
  const found = new Map<number, number>();
  for (let i = 0; i < 64 && found.size < 2; i++) {
    const id = await client.submit(type, payload, { idempotencyKey: `${tag}-${i}`, maxAttempts: 1, ...options });
    if (!found.has(shardOfTask(id))) found.set(shardOfTask(id), id);
  }
  return [found.get(0)!, found.get(1)!];
}

test("a task waits for parents on two shards, runs once both completed; failures and unknown parents are clear", async () => {
  cluster = new Cluster();
  const { router } = await cluster.twoShardsBehindRouter();
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  try {
    const [slow0, slow1] = await onEachShard(client, "sleep", { ms: 1000 }, "slow");
    const child = await client.submit("noop", undefined, { dependsOn: [slow0, slow1] });
    expect(shardOfTask(child)).toBe(0); // the shard of its first parent
    expect((await client.task(child)).state).toBe("waiting");
    const outcome = await client.wait(child);
    expect(outcome.ok).toBe(true);
    expect((await client.task(slow1)).state).toBe("completed");

    // The other way round, and in a workflow.
    const [, quick1] = await onEachShard(client, "noop", undefined, "quick");
    const flow = await client.workflow([{ type: "noop", dependsOn: [{ taskId: quick1 }, { taskId: slow0 }] }, { type: "noop", dependsOn: [{ node: 0 }] }]);
    expect(shardOfTask(flow[0]!)).toBe(1);
    expect((await client.wait(flow[1]!)).ok).toBe(true);

    // A parent that fails on its shard fails its dependant on the other.
    // (Held back past its deadline, it fails with E_DEADLINE; a type no worker has would wait instead.)
    const [bad0, bad1] = await onEachShard(client, "noop", undefined, "bad", { delayMs: 300, deadlineMs: 1 });
    const doomed = await client.submit("noop", undefined, { dependsOn: [slow0, bad1], maxAttempts: 1 });
    const failed = await client.wait(doomed);
    expect(failed.ok).toBe(false);
    expect(failed.error).toContain(`E_DEPENDENCY: parent task ${bad1} failed`);
    expect(bad0).toBeGreaterThan(0);

    // A parent on another shard that does not exist is refused at submission.
    const ghost = slow1 + 1_000_000;
    const refused = await client.submit("noop", undefined, { dependsOn: [slow0, ghost] }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TaskError);
    expect((refused as TaskError).code).toBe("E_UNKNOWN_TASK");
  } finally {
    client.close();
  }
});

test("the wait lives in the coordinators: a router killed mid-wait is replaced and the task still runs", async () => {
  cluster = new Cluster();
  const { shard0, shard1, router } = await cluster.twoShardsBehindRouter();
  const viaRouter = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  const [fast0, slow1] = await onEachShard(viaRouter, "sleep", { ms: 1500 }, "parent");
  const child = await viaRouter.submit("noop", undefined, { dependsOn: [fast0, slow1] });
  viaRouter.close();
  router.proc.kill("SIGKILL");
  // Watch the child on its own shard while no router runs, then start a new router.
  const direct = await SchedulerClient.connect({ host: "127.0.0.1", port: shard0.port });
  try {
    const done = direct.wait(child);
    await Bun.sleep(1700); // the parent has ended by now; nobody has told shard 0
    expect((await direct.task(child)).state).toBe("waiting");
    await cluster.router([shard0.port, shard1.port]);
    expect((await done).ok).toBe(true);
  } finally {
    direct.close();
  }
});

test("a REST array may hold a task with parents on two shards: it goes alone, the rest as a batch, answers in order", async () => {
  cluster = new Cluster();
  const httpPort = freePort();
  const { router } = await cluster.twoShardsBehindRouter({ routerArgs: ["--http-port", String(httpPort)] });
  const client = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  const base = `http://127.0.0.1:${httpPort}`;
  const post = async (tasks: unknown[]) => {
    const res = await fetch(`${base}/v1/tasks`, { method: "POST", body: JSON.stringify(tasks) });
    return { status: res.status, body: (await res.json()) as { taskIds?: number[]; error?: { code: string }; tasks?: Array<{ taskId?: number; error?: { code: string } }> } };
  };
  try {
    await waitFor("the HTTP port", async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined));
    const [slow0, slow1] = await onEachShard(client, "sleep", { ms: 1000 }, "rest-parent");
    const made = await post([{ type: "noop" }, { type: "noop", dependsOn: [slow0, slow1] }, { type: "noop", idempotencyKey: "rest-after" }]);
    expect(made.status).toBe(201);
    const [before, child, after] = made.body.taskIds!;
    expect(shardOfTask(child!)).toBe(0); // the shard of its first parent
    expect((await client.task(child!)).state).toBe("waiting");
    expect((await client.wait(child!)).ok).toBe(true);
    for (const parent of [slow0, slow1]) expect((await client.task(parent)).state).toBe("completed");
    expect((await client.wait(before!)).ok).toBe(true);
    expect(await client.taskByKey("rest-after").then((t) => t.taskId)).toBe(after!);

    // A refused task keeps its place; the others exist.
    const ghost = slow1 + 1_000_000;
    const partly = await post([{ type: "noop", dependsOn: [slow0, ghost] }, { type: "noop", idempotencyKey: "rest-after" }]);
    expect(partly.status).toBe(404);
    expect(partly.body.error!.code).toBe("E_UNKNOWN_TASK");
    expect(partly.body.tasks![0]!.error!.code).toBe("E_UNKNOWN_TASK");
    expect(partly.body.tasks![1]).toEqual({ taskId: after! });
  } finally {
    client.close();
  }
}, 60_000);
