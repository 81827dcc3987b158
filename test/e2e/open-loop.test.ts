// End to end: the client's open loop (--rate, --duration-s) against a
// coordinator and a worker from the compiled binaries.

import { afterEach, expect, test } from "bun:test";
import { Cluster, parseReport } from "./harness.ts";

let cluster: Cluster;
afterEach(async () => {
  await cluster?.stopAll();
});

async function singleShard(): Promise<number> {
  cluster = new Cluster();
  const coordinator = await cluster.coordinator();
  cluster.worker([coordinator.port], ["-w", "2"]);
  await cluster.workersJoined(coordinator.port, 1);
  return coordinator.port;
}

test("--rate 500 --duration-s 2 sends 1,000 tasks on schedule and reports the closed loop's figures plus the offered rate", async () => {
  const port = await singleShard();
  const run = await cluster.client(["-p", String(port), "--rate", "500", "--duration-s", "2", "--json"]);
  const report = parseReport(run);
  expect(run.code).toBe(0);
  expect(report.mode).toBe("open");
  expect(report.offeredRate).toBe(500);
  expect(report.tasks).toBe(1000);
  expect(report.completed).toBe(1000);
  expect(report.failed).toBe(0);
  // 1,000 tasks at 500/s take 2 s to send whatever the cluster does: an open loop cannot finish early.
  expect(report.durationMs).toBeGreaterThanOrEqual(1998);
  // Loose bounds: the machine is shared, but a client far off its schedule is a bug.
  expect(report.sentRate).toBeGreaterThan(450);
  expect(report.sentRate).toBeLessThanOrEqual(501);
  expect(report.throughput).toBeGreaterThan(400);
  expect(report.throughput).toBeLessThanOrEqual(501);
  for (const key of ["min", "avg", "p50", "p95", "p99", "max"]) expect(report.latencyMs[key]).toBeGreaterThan(0);
  expect(report.latencyMs.p50).toBeLessThanOrEqual(report.latencyMs.p95);
  expect(report.latencyMs.p95).toBeLessThanOrEqual(report.latencyMs.p99);
  expect(report.latencyMs.p99).toBeLessThanOrEqual(report.latencyMs.max);
  expect(report.inFlightPeak).toBeGreaterThan(0);
  expect(typeof report.sendLagMsMax).toBe("number");
  // Each task went out at or after its intended time, so from sent is never longer.
  const fromSent = report.latencyFromSentMs;
  for (const key of ["p50", "p99", "max"]) {
    expect(fromSent[key]).toBeGreaterThan(0);
    expect(fromSent[key]).toBeLessThanOrEqual(report.latencyMs[key]);
  }
});

test("-n caps an open-loop run; the table names the offered rate", async () => {
  const port = await singleShard();
  const run = await cluster.client(["-p", String(port), "--rate", "1000", "--duration-s", "5", "-n", "300"]);
  expect(run.code).toBe(0);
  expect(run.stdout).toContain("300 tasks, open loop");
  expect(run.stdout).toMatch(/offered\s+1000 tasks\/s/);
  expect(run.stdout).toMatch(/from sent ms\s+p50 [\d.]+\s+p99 [\d.]+/);
  expect(run.stdout).toMatch(/completed\s+300\n/);
});

test("without --rate the client stays a closed loop", async () => {
  const port = await singleShard();
  const report = parseReport(await cluster.client(["-p", String(port), "-n", "2000", "-c", "16", "--json"]));
  expect(report.mode).toBeUndefined();
  expect(report.concurrency).toBe(16);
  expect(report.completed).toBe(2000);
});

test("--warmup-s runs the schedule first, unmeasured, with keys of its own: the measured run still completes every one of its tasks", async () => {
  const port = await singleShard();
  const run = await cluster.client(["-p", String(port), "--rate", "400", "--warmup-s", "0.5", "--duration-s", "1", "--json"]);
  const report = parseReport(run);
  expect(run.code).toBe(0);
  expect(report.warmup).toEqual({ seconds: 0.5, tasks: 200, completed: 200, failed: 0 });
  expect(report.tasks).toBe(400);
  expect(report.completed).toBe(400);
  // Reused keys would have made the measured tasks duplicates of the warm-up's: the shard ran both.
  const stats = JSON.parse((await cluster.client(["-p", String(port), "stats"])).stdout);
  expect(stats.submitted).toBe(600);
  const table = await cluster.client(["-p", String(port), "--rate", "400", "--warmup-s", "0.25", "--duration-s", "0.5"]);
  expect(table.stdout).toMatch(/warm-up\s+0.25 s before, unmeasured: 100 of 100 tasks completed, 0 failed/);
});

test("--warmup-s without --rate is a usage error (exit 2), not silently ignored", async () => {
  cluster = new Cluster();
  const run = await cluster.client(["-p", "1", "--warmup-s", "1", "-n", "10"]);
  expect(run.code).toBe(2);
  expect(run.stderr).toContain("--warmup-s is for the open loop");
});
