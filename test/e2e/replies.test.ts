// End to end, on the wire: which replies a SUBMIT gets. Without notify, one
// SUBMITTED once it is replicated; with notify (the client waits for the end),
// one TASK_DONE alone, which also says it was accepted. Directly and through a
// router; and every request waiting on one task is told, even two on one link.

import { afterEach, expect, test } from "bun:test";
import { Kind, SUBMIT_FLAG_NOTIFY } from "../../src/protocol/messages.ts";
import { submitBody } from "../sim/replication-wire.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster } from "./harness.ts";
import { concat, frame, helloFrame, message, RawPeer } from "./raw-peer.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

async function repliesTo(port: number, flags: number): Promise<number[]> {
  const peer = await RawPeer.open(port);
  try {
    const submits = [1, 2, 3].map((requestId) => message(Kind.SUBMIT, submitBody({ requestId, flags, idempotencyKey: "", payload: new Uint8Array(0), type: "noop" })));
    peer.send(concat([helloFrame(), frame(concat(submits))]));
    const awaited = flags & SUBMIT_FLAG_NOTIFY ? Kind.TASK_DONE : Kind.SUBMITTED;
    const until = performance.now() + 10_000;
    while (peer.kinds.filter((k) => k === awaited).length < 3 && performance.now() < until) await Bun.sleep(10);
    await Bun.sleep(200); // anything else that was coming
    return peer.kinds.filter((k) => k !== Kind.WELCOME);
  } finally {
    peer.end();
  }
}

/** A coordinator with a worker, and a router in front of it. */
async function shardBehindRouter(): Promise<{ coordinatorPort: number; routerPort: number }> {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "1"]);
  await cluster.workersJoined(coordinator.port, 1);
  const router = await cluster.router([coordinator.port]);
  return { coordinatorPort: coordinator.port, routerPort: router.port };
}

test("a SUBMIT without notify gets SUBMITTED; with notify, TASK_DONE alone (coordinator, then router)", async () => {
  const { coordinatorPort, routerPort } = await shardBehindRouter();
  for (const port of [coordinatorPort, routerPort]) {
    expect(await repliesTo(port, 0)).toEqual([Kind.SUBMITTED, Kind.SUBMITTED, Kind.SUBMITTED]);
    expect(await repliesTo(port, SUBMIT_FLAG_NOTIFY)).toEqual([Kind.TASK_DONE, Kind.TASK_DONE, Kind.TASK_DONE]);
  }
});

test("two clients behind one router waiting on the same idempotency key both hear when the task ends", async () => {
  const { routerPort } = await shardBehindRouter();
  const [a, b] = await Promise.all([0, 1].map(() => SchedulerClient.connect({ host: "127.0.0.1", port: routerPort })));
  try {
    // Both arrive on the router's one link to the coordinator, under two request ids.
    const first = a!.run("sleep", { ms: 300 }, { idempotencyKey: "shared-key" });
    await Bun.sleep(50);
    const second = b!.run("sleep", { ms: 300 }, { idempotencyKey: "shared-key" });
    const outcomes = await Promise.race([Promise.all([first, second]), Bun.sleep(4_000).then(() => "timed out" as const)]);
    expect(outcomes).not.toBe("timed out");
    const [x, y] = outcomes as Awaited<typeof first>[];
    expect(x!.ok && y!.ok).toBe(true);
    expect(x!.taskId).toBe(y!.taskId);
  } finally {
    a!.close();
    b!.close();
  }
});
