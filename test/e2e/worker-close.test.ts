// createWorker().close() delivers every result it holds before it resolves: a
// task that ends while its coordinator is down keeps its result until the
// coordinator is back (a restart from its data directory here), and close()
// waits for that delivery instead of dropping it; what it cannot deliver in
// time it reports.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createWorker } from "../../src/sdk/index.ts";
import { Cluster, freePort, waitFor } from "./harness.ts";

interface Tasks {
  slow: { payload: { ms: number }; result: string };
}

const RUN_MS = 90_000;
const cluster = new Cluster();
const dataDir = mkdtempSync(join(tmpdir(), "worker-close-"));

afterAll(async () => {
  await cluster.stopAll();
  rmSync(dataDir, { recursive: true, force: true });
});

async function slowWorker(port: number) {
  return createWorker<Tasks>({
    servers: [`127.0.0.1:${port}`],
    concurrency: 4,
    handlers: { slow: async ({ ms }, ctx) => (await Bun.sleep(ms), `attempt ${ctx.attempt}`) },
  });
}

test("close() waits for a result held while the coordinator was down, and delivers it", async () => {
  const port = freePort();
  const args = ["-p", String(port), "--data-dir", dataDir, "--tick-ms", "20"];
  let coordinator = await cluster.coordinator(args);
  const worker = await slowWorker(port);
  await cluster.workersJoined(port, 1);
  const scheduler = await connect<Tasks>({ servers: [`127.0.0.1:${port}`], retry: { giveUpAfterMs: 30_000 } });
  const handle = await scheduler.submit("slow", { ms: 1_500 }, { maxAttempts: 1 });
  await waitFor("the task to start", () => (worker.running > 0 ? true : undefined));
  coordinator.proc.kill("SIGKILL");
  await coordinator.proc.exited;
  const closing = worker.close(30_000);
  // The task ends with no coordinator to tell: its result is held, and close() must not resolve yet.
  await waitFor("the task to end on the worker", () => (worker.running === 0 ? true : undefined));
  let closed = false;
  void closing.then(() => (closed = true));
  await Bun.sleep(300); // a window in which a close() that dropped the result would have resolved
  expect(closed).toBe(false);
  coordinator = await cluster.coordinator(args);
  expect(await closing).toEqual({ unfinished: 0, undelivered: 0 });
  // Delivered, not dropped: the one attempt's result (with maxAttempts 1 a lost result would never complete).
  expect(await handle.result()).toBe("attempt 1");
  await scheduler.close();
}, RUN_MS);

test("close() reports the results it could not deliver before its timeout", async () => {
  const port = freePort();
  const coordinator = await cluster.coordinator(["-p", String(port), "--tick-ms", "20"]);
  const worker = await slowWorker(port);
  await cluster.workersJoined(port, 1);
  const scheduler = await connect<Tasks>({ servers: [`127.0.0.1:${port}`], retry: { giveUpAfterMs: 1_000 } });
  await scheduler.submit("slow", { ms: 300 }, { maxAttempts: 1 });
  await waitFor("the task to start", () => (worker.running > 0 ? true : undefined));
  coordinator.proc.kill("SIGKILL");
  expect(await worker.close(2_000)).toEqual({ unfinished: 0, undelivered: 1 });
  await scheduler.close();
}, RUN_MS);
