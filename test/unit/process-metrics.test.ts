// Process series in Prometheus text, and the sampler behind them.

import { expect, test } from "bun:test";
import { PROCESS_SAMPLER, processMetrics } from "../../src/metrics/process-metrics.ts";

test("process metrics render with HELP and TYPE, in seconds and bytes", () => {
  const text = processMetrics({ cpuUserSeconds: 1.5, cpuSystemSeconds: 0.25, residentBytes: 1024, heapUsedBytes: 512, eventLoopLagMaxSeconds: 0.012 }, { process: "worker", node: "w1" });
  expect(text).toContain("# TYPE taskscheduler_process_cpu_seconds_total counter\n");
  expect(text).toContain('taskscheduler_process_cpu_seconds_total{process="worker",node="w1",mode="user"} 1.5\n');
  expect(text).toContain('taskscheduler_process_cpu_seconds_total{process="worker",node="w1",mode="system"} 0.25\n');
  expect(text).toContain('taskscheduler_process_resident_memory_bytes{process="worker",node="w1"} 1024\n');
  expect(text).toContain('taskscheduler_process_heap_used_bytes{process="worker",node="w1"} 512\n');
  expect(text).toContain("# TYPE taskscheduler_process_event_loop_lag_max_seconds gauge\n");
  expect(text).toContain('taskscheduler_process_event_loop_lag_max_seconds{process="worker",node="w1"} 0.012\n');
});

test("the sampler reads the runtime and sees a blocked event loop as lag", async () => {
  const first = PROCESS_SAMPLER.sample();
  expect(first.residentBytes).toBeGreaterThan(0);
  expect(first.heapUsedBytes).toBeGreaterThan(0);
  // Block the loop for 300 ms, then wait for the timer to notice.
  const until = performance.now() + 300;
  while (performance.now() < until) {}
  const deadline = Date.now() + 2000;
  while (PROCESS_SAMPLER.sample().eventLoopLagMaxSeconds < 0.15 && Date.now() < deadline) await Bun.sleep(20);
  const s = PROCESS_SAMPLER.sample();
  expect(s.eventLoopLagMaxSeconds).toBeGreaterThanOrEqual(0.15);
  expect(s.cpuUserSeconds).toBeGreaterThan(first.cpuUserSeconds);
  PROCESS_SAMPLER.stop();
});
