// Connection limits that protect the cluster: ten thousand idle clients fill
// the client slots of a coordinator, and a worker, a router and a client
// through that router still start and run tasks, because workers, routers and
// peers have slots of their own. Then the time-outs: an idle client is closed
// with E_IDLE_TIMEOUT, a client waiting for a result is not.

import { afterEach, expect, test } from "bun:test";
import { Kind } from "../../src/protocol/messages.ts";
import { SchedulerClient } from "../../src/sdk/client.ts";
import { Cluster, freePort, parseReport, waitFor } from "./harness.ts";
import { IdleClients, openFilesLimit, rssBytes } from "./idle-clients.ts";
import { controlMessage, frame, helloFrame, RawPeer } from "./raw-peer.ts";

const IDLE_CLIENTS = 10_000;
/** Opened this many at a time, under the server's default --handshakes-max (1,000). */
const OPEN_BATCH = 500;
const OPEN_DEADLINE_MS = 60_000;
/** Besides the idle clients: the servers' own sockets, the harness's pipes, Bun's own. */
const FILES_HEADROOM = 500;
const TASKS = 200;
const IDLE_TIMEOUT_MS = 600;
/** Sweeps run every quarter of the time-out: a close this far past it is late. */
const CLOSE_SLACK_MS = 3_000;

let cluster: Cluster;
let idle: IdleClients | undefined;
afterEach(async () => {
  idle?.closeAll();
  idle = undefined;
  await cluster?.stopAll();
});

const filesLimit = openFilesLimit();
const enoughFiles = filesLimit !== undefined && filesLimit >= IDLE_CLIENTS + FILES_HEADROOM;
if (!enoughFiles) {
  console.warn(`skipping the ${IDLE_CLIENTS}-idle-clients test: it needs ${IDLE_CLIENTS + FILES_HEADROOM} open files and the limit here is ${filesLimit ?? "unknown (no /proc)"}; raise the hard limit (ulimit -Hn) to run it`);
}

/** Waits until the server closes `peer`; returns its connection-level ERROR. */
async function closedWithError(peer: RawPeer, deadlineMs: number): Promise<{ code: string; message: string }> {
  if (!(await peer.waitClosed(deadlineMs))) {
    peer.end();
    throw new Error(`still open after ${deadlineMs} ms (kinds [${peer.kinds}])`);
  }
  expect(peer.errors).toHaveLength(1);
  expect(peer.errors[0]!.requestId).toBe(0);
  return { code: peer.errors[0]!.code, message: peer.errors[0]!.message };
}

test.skipIf(!enoughFiles)(`${IDLE_CLIENTS} idle clients hold every client slot of a coordinator; a worker, a router and a client through it still run tasks`, async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator(["--connections-max", String(IDLE_CLIENTS)]);
  const rssBefore = rssBytes(coordinator.proc.pid);
  idle = new IdleClients();
  const started = performance.now();
  await idle.open(coordinator.port, IDLE_CLIENTS, OPEN_BATCH, OPEN_DEADLINE_MS);
  const openMs = Math.round(performance.now() - started);

  // The client slots are full: one more client is refused, and told which limit.
  const extra = await RawPeer.open(coordinator.port);
  extra.send(helloFrame());
  const refusal = await closedWithError(extra, 10_000);
  expect(refusal.code).toBe("E_TOO_MANY_CONNECTIONS");
  expect(refusal.message).toContain("--connections-max");

  // Workers and routers take slots the idle clients cannot.
  cluster.worker([coordinator.port], ["-w", "2"]);
  const router = await cluster.router([coordinator.port]);
  await cluster.workersJoined(router.port, 1);
  const run = await cluster.client(["-p", String(router.port), "-n", String(TASKS), "-c", "16", "--json"], 60_000);
  const report = parseReport(run);
  expect(report.completed).toBe(TASKS);
  expect(report.failed).toBe(0);

  // All of it while every idle client was still held.
  expect(idle.closed).toBe(0);
  expect(idle.welcomed).toBe(IDLE_CLIENTS);
  const rssGrowthMb = (rssBytes(coordinator.proc.pid) - rssBefore) / 2 ** 20;
  console.log(`connection limits: ${IDLE_CLIENTS} idle clients opened in ${openMs} ms; coordinator RSS grew ${rssGrowthMb.toFixed(0)} MB`);
}, 120_000);

test.skipIf(!enoughFiles)(`${IDLE_CLIENTS} idle clients hold every client slot of a router; its REST API still submits and completes tasks`, async () => {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "2"]);
  const httpPort = freePort();
  const router = await cluster.router([coordinator.port], ["--connections-max", String(IDLE_CLIENTS), "--http-port", String(httpPort)]);
  await cluster.workersJoined(router.port, 1);
  idle = new IdleClients();
  await idle.open(router.port, IDLE_CLIENTS, OPEN_BATCH, OPEN_DEADLINE_MS);

  // The REST API reaches the cluster through its own router: as a router, not as one more client.
  const base = `http://127.0.0.1:${httpPort}`;
  const submitted = await fetch(`${base}/v1/tasks`, { method: "POST", body: JSON.stringify({ type: "noop" }), headers: { "content-type": "application/json" } });
  expect(submitted.status).toBe(201);
  const { taskId } = (await submitted.json()) as { taskId: number };
  await waitFor(`task ${taskId} completed`, async () => ((await fetch(`${base}/v1/tasks/${taskId}/result`)).status === 200 ? true : undefined));
  expect(idle.closed).toBe(0);
}, 120_000);

test("an idle client is closed with E_IDLE_TIMEOUT; clients waiting for results, workers and routers are not", async () => {
  cluster = new Cluster();
  const timeouts = ["--client-idle-timeout-ms", String(IDLE_TIMEOUT_MS)];
  const coordinator = await cluster.coordinator(timeouts);
  cluster.worker([coordinator.port], ["-w", "2"]);
  const router = await cluster.router([coordinator.port], timeouts);
  await cluster.workersJoined(router.port, 1);

  for (const port of [coordinator.port, router.port]) {
    const peer = await RawPeer.open(port);
    peer.send(helloFrame());
    expect(await peer.waitKind(Kind.WELCOME, 5_000)).toBe(true);
    const closed = await closedWithError(peer, IDLE_TIMEOUT_MS + CLOSE_SLACK_MS);
    expect(closed.code).toBe("E_IDLE_TIMEOUT");
    expect(closed.message).toContain("--client-idle-timeout-ms");
    expect(peer.closedAfterMs!).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS);
  }

  // A request resets the clock: a client that keeps asking stays.
  const chatty = await RawPeer.open(coordinator.port);
  chatty.send(helloFrame());
  for (let i = 1; i <= 6; i++) {
    await Bun.sleep(IDLE_TIMEOUT_MS / 2);
    chatty.send(frame(controlMessage(Kind.STATS_REQUEST, { requestId: i })));
  }
  expect(chatty.isClosed).toBe(false);
  chatty.end();

  // Waiting for a task's end (run: SUBMIT with notify; wait: WATCH) is not idleness,
  // straight to the coordinator or through the router, however long the task takes.
  const direct = await SchedulerClient.connect({ host: "127.0.0.1", port: coordinator.port });
  const routed = await SchedulerClient.connect({ host: "127.0.0.1", port: router.port });
  try {
    const taskMs = IDLE_TIMEOUT_MS * 4;
    const watched = await direct.submit("sleep", { ms: taskMs });
    const outcomes = await Promise.all([direct.run("sleep", { ms: taskMs }), routed.run("sleep", { ms: taskMs }), direct.wait(watched)]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
    // And once nothing is awaited any more, they are idle like any other.
    await waitFor("the waiting clients to be closed as idle", () => (direct.closed && routed.closed ? true : undefined), IDLE_TIMEOUT_MS + CLOSE_SLACK_MS);
    expect(() => direct.submit("noop", {})).toThrow("E_IDLE_TIMEOUT");
  } finally {
    direct.close();
    routed.close();
  }

  // The worker and the router's link sat through all of this without a request of their own.
  const stats = (await cluster.stats(router.port)).coordinators[0]!;
  expect(stats.reachable).toBe(true);
  expect(stats.stats!.workers).toHaveLength(1);
}, 60_000);
