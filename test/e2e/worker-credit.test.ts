// A worker serving two coordinators (two shards) splits its slots between them:
// its handlers never see more runs at once than threads x concurrency, and the
// coordinator with work for it gets most of them.

import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decode } from "@msgpack/msgpack";
import { resolve } from "node:path";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, waitFor } from "./harness.ts";

const COUNTING_HANDLERS = resolve(import.meta.dir, "fixtures/counting-handlers.ts");
/** One executor thread, so the handlers' module-level count sees every run of the process. */
const CONCURRENCY = 8;
/** Per coordinator: enough to keep every slot of the worker busy several times over. */
const TASKS_EACH = 48;
const HOLD_MS = 150;

describe("one worker serving two coordinators", () => {
  let cluster: Cluster;
  let a: SchedulerClient;
  let b: SchedulerClient;
  let ports: number[] = [];

  beforeAll(async () => {
    cluster = new Cluster();
    const shard0 = await cluster.coordinator(["--shard", "0"]);
    const shard1 = await cluster.coordinator(["--shard", "1"]);
    ports = [shard0.port, shard1.port];
    cluster.worker(ports, ["-w", "1", "--thread-concurrency", String(CONCURRENCY), "--handlers", COUNTING_HANDLERS, "--heartbeat-ms", "100"]);
    await cluster.workersJoined(shard0.port, 1);
    await cluster.workersJoined(shard1.port, 1);
    a = await SchedulerClient.connect({ host: "127.0.0.1", port: shard0.port });
    b = await SchedulerClient.connect({ host: "127.0.0.1", port: shard1.port });
  });

  afterAll(async () => {
    a?.close();
    b?.close();
    await cluster?.stopAll();
  });

  /** The worker's credit on each coordinator, as its stats say. */
  async function credits(): Promise<number[]> {
    return Promise.all(ports.map(async (port) => (await cluster.stats(port)).coordinators[0]!.stats!.workers[0]?.slots ?? 0));
  }

  test("its credits add up to its slots, not its slots on each", async () => {
    const slots = await waitFor("both credits to be set", async () => {
      const c = await credits();
      return c[0]! + c[1]! === CONCURRENCY ? c : undefined;
    });
    expect(slots.every((s) => s >= 1)).toBe(true);
  });

  test(`with both busy, its handlers never run more than ${CONCURRENCY} at once`, async () => {
    const hold = (client: SchedulerClient) => Array.from({ length: TASKS_EACH }, () => client.run("hold", { ms: HOLD_MS }, { maxAttempts: 1 }));
    const outcomes = await Promise.all([...hold(a), ...hold(b)]);
    expect(outcomes.filter((o) => !o.ok).map((o) => o.error)).toEqual([]);
    const mostAtOnce = Math.max(...outcomes.map((o) => decode(o.output) as number));
    expect(mostAtOnce).toBeLessThanOrEqual(CONCURRENCY);
    expect(mostAtOnce).toBeGreaterThan(CONCURRENCY / 2); // it did use slots from both shares
  });

  test("the coordinator with queued work gets most of the slots; the total stays the same", async () => {
    const running = Array.from({ length: TASKS_EACH * 2 }, () => a.run("hold", { ms: HOLD_MS }, { maxAttempts: 1 }));
    const moved = await waitFor("the busy coordinator's credit to grow", async () => {
      const c = await credits();
      expect(c[0]! + c[1]!).toBeLessThanOrEqual(CONCURRENCY);
      return c[0]! > CONCURRENCY / 2 ? c : undefined;
    });
    expect(moved[1]).toBeGreaterThanOrEqual(1); // the idle one keeps a slot to show new work
    expect((await Promise.all(running)).every((o) => o.ok)).toBe(true);
  });
});
