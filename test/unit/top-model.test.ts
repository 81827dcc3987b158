// TopModel: throughput from counter differences, the history the sparkline
// draws, totals over primaries, and what a failed poll does to the view.

import { describe, expect, test } from "bun:test";
import type { ClusterStats, CoordinatorStats, WorkerInfo } from "../../src/protocol/messages.ts";
import { clusterTotals, throughputPerS, TopModel, type Poll } from "../../src/top/model.ts";

function worker(over: Partial<WorkerInfo> = {}): WorkerInfo {
  return { id: 1, nodeId: "worker-1", slots: 8, free: 3, done: 100, failed: 2, heartbeatAgeMs: 120, tags: ["cpu"], ...over };
}

function coordinator(over: Partial<CoordinatorStats> = {}): CoordinatorStats {
  return {
    requestId: 1, nodeId: "coordinator-5000", shard: 0, epoch: 1, primary: true, uptimeMs: 10_000,
    replication: { role: "primary", appliedIndex: 50, committedIndex: 50, backupsInSync: 1, alone: false },
    queued: 5, leased: 5, submitted: 1000, completed: 900, failed: 10, retried: 3, rejectedQueueFull: 0, retained: 0,
    waiting: 0, delayed: 0, cancelled: 0, deadlineMissed: 0, dead: 0, unmatched: 0,
    latencyMs: { p50: 1.5, p99: 12, max: 20 }, workers: [worker()], ...over,
  };
}

function ok(atMs: number, coordinators: ClusterStats["coordinators"]): Poll {
  return {
    ok: true, atMs, target: "127.0.0.1:6000", serverRole: "router",
    stats: { requestId: 1, router: { nodeId: "router", uptimeMs: 1, clients: 1, forwarded: 0, retried: 0 }, coordinators },
  };
}

const up = (address: string, stats: CoordinatorStats) => ({ address, reachable: true, stats });

describe("throughputPerS", () => {
  test("is the counter difference over the elapsed time", () => {
    expect(throughputPerS({ completed: 1000, atMs: 10_000 }, 3000, 12_000)).toBe(1000);
    expect(throughputPerS({ completed: 1000, atMs: 10_000 }, 1000, 10_500)).toBe(0);
  });

  test("is unknown without a previous reading, with no time passed, or when the counter went back", () => {
    expect(throughputPerS(undefined, 5, 1000)).toBeUndefined();
    expect(throughputPerS({ completed: 1, atMs: 1000 }, 5, 1000)).toBeUndefined();
    expect(throughputPerS({ completed: 500, atMs: 1000 }, 20, 2000)).toBeUndefined();
  });
});

describe("TopModel", () => {
  test("first poll has no throughput; the next has the rate per coordinator and for the cluster", () => {
    const model = new TopModel(60);
    const first = model.observe(ok(1000, [up("a:1", coordinator({ completed: 100 })), up("b:2", coordinator({ nodeId: "c2", shard: 1, completed: 0 }))]));
    expect(first.coordinators.map((c) => c.throughputPerS)).toEqual([undefined, undefined]);
    expect(first.totals.throughputPerS).toBeUndefined();
    expect(first.history).toEqual([null]);

    const second = model.observe(ok(1500, [up("a:1", coordinator({ completed: 600 })), up("b:2", coordinator({ nodeId: "c2", shard: 1, completed: 250 }))]));
    expect(second.coordinators.map((c) => c.throughputPerS)).toEqual([1000, 500]);
    expect(second.totals.throughputPerS).toBe(1500);
    expect(second.history).toEqual([null, 1500]);
  });

  test("a restarted coordinator (new node at the address, or counters reset) gives no bogus rate", () => {
    const model = new TopModel();
    model.observe(ok(1000, [up("a:1", coordinator({ completed: 5000 }))]));
    const reset = model.observe(ok(2000, [up("a:1", coordinator({ completed: 10 }))]));
    expect(reset.coordinators[0]!.throughputPerS).toBeUndefined();
    const next = model.observe(ok(3000, [up("a:1", coordinator({ completed: 110 }))]));
    expect(next.coordinators[0]!.throughputPerS).toBe(100);
    const renamed = model.observe(ok(4000, [up("a:1", coordinator({ nodeId: "other", completed: 9000 }))]));
    expect(renamed.coordinators[0]!.throughputPerS).toBeUndefined();
  });

  test("history keeps the last historyMax polls", () => {
    const model = new TopModel(3);
    let view;
    for (let i = 0; i < 6; i++) view = model.observe(ok(i * 1000, [up("a:1", coordinator({ completed: i * 10 }))]));
    expect(view!.history).toEqual([10, 10, 10]);
    expect(view!.polls).toBe(6);
  });

  test("a failed poll keeps the last figures, marks them stale, and leaves a gap in the history", () => {
    const model = new TopModel();
    model.observe(ok(1000, [up("a:1", coordinator({ completed: 0 }))]));
    model.observe(ok(2000, [up("a:1", coordinator({ completed: 700 }))]));
    const failed = model.observe({ ok: false, atMs: 3000, target: "127.0.0.1:6000", error: "router 127.0.0.1:6000 unreachable: ECONNREFUSED" });
    expect(failed.error).toContain("unreachable");
    expect(failed.lastOkAtMs).toBe(2000);
    expect(failed.serverRole).toBe("router");
    expect(failed.coordinators[0]!.stats!.completed).toBe(700);
    expect(failed.coordinators[0]!.throughputPerS).toBeUndefined();
    expect(failed.totals.throughputPerS).toBeUndefined();
    expect(failed.history).toEqual([null, 700, null]);

    // Back: the rate spans the gap since the last good reading.
    const back = model.observe(ok(4000, [up("a:1", coordinator({ completed: 1100 }))]));
    expect(back.error).toBeUndefined();
    expect(back.coordinators[0]!.throughputPerS).toBe(200);
  });

  test("a failure before any answer gives an empty view with the error", () => {
    const view = new TopModel().observe({ ok: false, atMs: 1, target: "127.0.0.1:5000", error: "server 127.0.0.1:5000 unreachable: refused" });
    expect(view.coordinators).toEqual([]);
    expect(view.lastOkAtMs).toBeUndefined();
    expect(view.totals.coordinators).toBe(0);
  });

  test("a coordinator the router cannot reach is listed with its error and no stats", () => {
    const view = new TopModel().observe(ok(1000, [up("a:1", coordinator()), { address: "b:2", reachable: false, error: "connect ECONNREFUSED" }]));
    expect(view.coordinators[1]).toEqual({ address: "b:2", reachable: false, error: "connect ECONNREFUSED" });
    expect(view.totals.reachable).toBe(1);
    expect(view.totals.coordinators).toBe(2);
  });
});

describe("clusterTotals", () => {
  test("sums primaries only, and counts a worker serving two shards once", () => {
    const totals = clusterTotals([
      { address: "a:1", reachable: true, stats: coordinator({ queued: 1, leased: 2, completed: 10, failed: 1 }), throughputPerS: 5 },
      { address: "b:2", reachable: true, stats: coordinator({ shard: 1, queued: 3, unmatched: 2, leased: 4, completed: 20, failed: 2, workers: [worker({ id: 9 })] }), throughputPerS: 7 },
      { address: "a:3", reachable: true, stats: coordinator({ primary: false, queued: 100, unmatched: 50, completed: 10 }), throughputPerS: 5 },
    ]);
    expect(totals).toMatchObject({ coordinators: 3, reachable: 3, queued: 4, unmatched: 2, leased: 6, completed: 30, failed: 3, throughputPerS: 12 });
    expect(totals.workers).toBe(1);
    expect(totals.slots).toBe(16);
    expect(totals.busy).toBe(10);
  });
});
