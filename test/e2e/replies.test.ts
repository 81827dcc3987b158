// End to end, on the wire: which replies a SUBMIT gets. Without notify, one
// SUBMITTED once it is replicated; with notify (the client waits for the end),
// one TASK_DONE alone, which also says it was accepted. Directly and through a router.

import { afterEach, expect, test } from "bun:test";
import { Kind, SUBMIT_FLAG_NOTIFY } from "../../src/protocol/messages.ts";
import { submitBody } from "../sim/replication-wire.ts";
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

test("a SUBMIT without notify gets SUBMITTED; with notify, TASK_DONE alone (coordinator, then router)", async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "1"]);
  await cluster.workersJoined(coordinator.port, 1);
  const router = await cluster.router([coordinator.port]);
  for (const port of [coordinator.port, router.port]) {
    expect(await repliesTo(port, 0)).toEqual([Kind.SUBMITTED, Kind.SUBMITTED, Kind.SUBMITTED]);
    expect(await repliesTo(port, SUBMIT_FLAG_NOTIFY)).toEqual([Kind.TASK_DONE, Kind.TASK_DONE, Kind.TASK_DONE]);
  }
});
