// scheduler.events() against real processes: the stream outlives the router it
// subscribed through (kill -9 mid-run: every task's completed event arrives,
// none twice), and the primary of its shard (killed: the new primary's events
// come after a gap event for the shard, never a silent skip). A stream given
// an earlier stream's lastEventId picks up where that one stopped.

import { afterEach, expect, test } from "bun:test";
import { connect, type Scheduler } from "../../src/sdk/scheduler.ts";
import type { SchedulerEvent, TaskEvents } from "../../src/sdk/events.ts";
import { Cluster, waitFor } from "./harness.ts";

const RUN_MS = 120_000;
const retry = { minDelayMs: 20, maxDelayMs: 500, giveUpAfterMs: 20_000, connectTimeoutMs: 2_000 };

let cluster: Cluster | undefined;
let client: Scheduler | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await cluster?.stopAll();
});

/** Everything a stream hands out, by listener. */
function record(stream: TaskEvents): SchedulerEvent[] {
  const got: SchedulerEvent[] = [];
  stream.on("event", (e) => got.push(e));
  return got;
}

const completedIds = (events: SchedulerEvent[]) => events.filter((e) => e.kind === "completed").map((e) => e.taskId);

test("kill -9 of the router the stream uses: every completed event arrives once, through the other router", async () => {
  cluster = new Cluster();
  const { router: doomed, routers } = await cluster.twoShardsBehindRouter({ workerArgs: ["-w", "2", "--thread-concurrency", "4"], routers: 2 });
  const survivor = routers[1]!;
  client = await connect({ servers: [`127.0.0.1:${doomed.port}`, `127.0.0.1:${survivor.port}`], retry, random: () => 0 });
  const stream = client.events({ kinds: ["completed"] });
  const got = record(stream);
  await waitFor("the stream's position on both shards", () => (stream.lastEventId.split("_").length === 2 ? true : undefined));
  const handles = await Promise.all(Array.from({ length: 300 }, (_, i) => client!.submit("sleep", { ms: 10 }, { idempotencyKey: `events-${i}` })));
  await waitFor("some events", () => (got.length >= 30 ? true : undefined));
  expect(got.length).toBeLessThan(300); // the kill lands mid-run
  doomed.proc.kill("SIGKILL");
  await Promise.all(handles.map((h) => h.result()));
  await waitFor("every completed event", () => (got.length >= 300 ? true : undefined));
  expect(completedIds(got).sort()).toEqual(handles.map((h) => h.id).sort()); // each once: none lost, none twice
  expect(client.server).toBe(`127.0.0.1:${survivor.port}`);

  // A later stream resumed from this one's last id hears only what came after.
  const lastId = stream.lastEventId;
  stream.close();
  const more = await Promise.all(Array.from({ length: 20 }, () => client!.submit("noop")));
  const resumed = client.events({ kinds: ["completed"], after: lastId });
  const iterated: number[] = [];
  for await (const e of resumed) {
    iterated.push(e.taskId);
    if (iterated.length === 20) break; // ends the stream
  }
  expect(iterated.sort()).toEqual(more.map((h) => h.id).sort());
}, RUN_MS);

test("kill -9 of the shard's primary: the new primary's events come after a gap event, none silently skipped", async () => {
  cluster = new Cluster();
  const nodes = await cluster.replicas(2, ["--tick-ms", "20"]);
  const ports = nodes.map((n) => n.port);
  cluster.worker(ports, ["-w", "1"]);
  const router = await cluster.router(ports);
  const { primary } = await cluster.pairInSync(nodes);
  await cluster.workersJoined(router.port, 1);
  client = await connect({ servers: [`127.0.0.1:${router.port}`], retry });
  const stream = client.events();
  const got = record(stream);
  await waitFor("the stream's position", () => (stream.lastEventId !== "" ? true : undefined));
  const before = await Promise.all(Array.from({ length: 50 }, () => client!.submit("noop")));
  await waitFor("the events before the kill", () => (completedIds(got).length >= 50 ? true : undefined));
  const term = Number(stream.lastEventId.split(".")[1]);
  primary.proc.kill("SIGKILL");
  const after = await Promise.all(Array.from({ length: 50 }, () => client!.submit("noop")));
  await waitFor("the events after the failover", () => (after.every((h) => completedIds(got).includes(h.id)) ? true : undefined), 30_000);
  const gap = got.find((e) => e.kind === "gap");
  expect(gap).toBeDefined();
  expect(gap!.term).not.toBe(term); // the new primary's term
  expect(gap!.reason).toContain(`new primary since term ${term}`);
  // Before the gap, the old primary's events; after it, the new one's only.
  const at = got.indexOf(gap!);
  expect(got.slice(0, at).every((e) => e.term === term)).toBe(true);
  expect(got.slice(at).every((e) => e.term === gap!.term)).toBe(true);
  expect(completedIds(got.slice(0, at))).toEqual(expect.arrayContaining(before.map((h) => h.id)));
}, RUN_MS);
