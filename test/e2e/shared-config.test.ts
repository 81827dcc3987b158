// One config file for a whole cluster: coordinator, worker, router and client
// each take their own settings from it (flat keys and their own section) and
// leave the others' alone; a key no binary knows is refused by all of them.

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, freePort, parseReport, waitFor } from "./harness.ts";

const dir = mkdtempSync(join(tmpdir(), "shared-config-"));
const cluster = new Cluster();
afterAll(async () => {
  await cluster.stopAll();
  rmSync(dir, { recursive: true, force: true });
});

function configFile(name: string, settings: Record<string, unknown>): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(settings, null, 2));
  return path;
}

async function listening(name: string, config: string): Promise<string> {
  const started = cluster.spawn(name, ["--config", config]);
  await waitFor(`${name} to listen`, () => (/listening on/.test(started.output()) ? true : undefined));
  return started.output();
}

test("coordinator, worker, router and client all start from one config file", async () => {
  const coordinatorPort = freePort();
  const routerPort = freePort();
  const config = configFile("cluster.json", {
    "log-level": "warn", // coordinator, worker, router
    "max-queue": 50_000, // coordinator only
    threads: 1, // worker only
    concurrency: 16, // client only (the worker's former --concurrency is its --thread-concurrency)
    "frame-bytes-max": 8 * 1024 * 1024, // every server and the worker
    coordinator: { port: coordinatorPort, "node-id": "from-shared-config" },
    worker: { servers: `127.0.0.1:${coordinatorPort}`, "node-id": "worker-from-shared-config" },
    router: { port: routerPort, servers: `127.0.0.1:${coordinatorPort}` },
    client: { port: routerPort, tasks: 500, json: true },
  });
  const coordinatorOut = await listening("coordinator", config);
  const worker = cluster.spawn("worker", ["--config", config]);
  const routerOut = await listening("router", config);
  await cluster.workersJoined(routerPort, 1);
  const run = await cluster.client(["--config", config], 60_000);
  const report = parseReport(run);
  expect({ code: run.code, tasks: report.tasks, concurrency: report.concurrency, completed: report.completed }).toEqual({ code: 0, tasks: 500, concurrency: 16, completed: 500 });
  const stats = await cluster.stats(routerPort);
  expect(stats.coordinators.map((c) => c.stats?.nodeId)).toEqual(["from-shared-config"]);
  expect(stats.coordinators[0]!.stats!.workers.map((w) => w.nodeId)).toEqual(["worker-from-shared-config"]);
  // Nothing in the file was anyone's former name or a stranger: no warnings, no refusals.
  for (const out of [coordinatorOut, worker.output(), routerOut, run.stderr]) expect(out).not.toContain("warning");
}, 120_000);

test("a key no binary knows is refused by every binary, naming the file and the key (exit 2)", async () => {
  const config = configFile("typo.json", { "max-queu": 10, worker: { threads: 1 } });
  for (const name of ["coordinator", "worker", "router", "client", "top"]) {
    const proc = Bun.spawn([`${import.meta.dir}/../../dist/${name}`, "--config", config], { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    expect({ name, code, says: stderr.includes(`config file ${config}: unknown setting "max-queu"`) }).toEqual({ name, code: 2, says: true });
  }
}, 60_000);
