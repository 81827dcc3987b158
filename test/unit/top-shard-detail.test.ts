// top's shard detail view: replicas, roles, ISR, epoch and lag of one shard,
// from the router's stats, within 80 columns.

import { expect, test } from "bun:test";
import type { ClusterStats, CoordinatorStats, ReplicationStats } from "../../src/protocol/messages.ts";
import { TopModel, type DashboardView } from "../../src/top/model.ts";
import { frameText, render, type RenderOptions } from "../../src/top/render.ts";
import { shardsOf, stepShard } from "../../src/top/shard-detail.ts";

function replica(shard: number, port: number, replication: ReplicationStats, over: Partial<CoordinatorStats> = {}): ClusterStats["coordinators"][number] {
  const stats: CoordinatorStats = {
    requestId: 1, nodeId: `coordinator-${port}`, shard, epoch: 7, primary: replication.role === "primary", uptimeMs: 65_000, replication,
    queued: 17, leased: 5, submitted: 1000, completed: 900, failed: 4, retried: 3, rejectedQueueFull: 0, retained: 0,
    waiting: 0, delayed: 0, cancelled: 0, deadlineMissed: 0, dead: 2, unmatched: 0,
    latencyMs: { p50: 1, p99: 2, max: 3 }, workers: [{ id: 1, nodeId: "w", slots: 8, free: 6, done: 1, failed: 0, heartbeatAgeMs: 1, tags: [] }], ...over,
  };
  return { address: `127.0.0.1:${port}`, reachable: true, stats };
}

/** Shard 0: an etcd-led group (primary, a backup in the ISR 3 entries behind, one out of it); shard 1: a single node. */
function view(): DashboardView {
  const model = new TopModel();
  return model.observe({
    ok: true, atMs: 1000, target: "127.0.0.1:6000", serverRole: "router",
    stats: {
      requestId: 1, router: { nodeId: "r", uptimeMs: 1, clients: 1, forwarded: 0, retried: 0 },
      coordinators: [
        replica(0, 5000, { role: "primary", appliedIndex: 120, committedIndex: 120, backupsInSync: 1, alone: false, replicaId: "r-a", isr: ["r-a", "r-b"] }),
        replica(0, 5001, { role: "backup", appliedIndex: 117, committedIndex: 117, backupsInSync: 0, alone: false, following: "127.0.0.1:5000", replicaId: "r-b" }),
        replica(0, 5002, { role: "backup", appliedIndex: 40, committedIndex: 40, backupsInSync: 0, alone: false, following: "127.0.0.1:5000", replicaId: "r-c", notLeading: "not in the ISR" }, { epoch: 6 }),
        replica(1, 5100, { role: "primary", appliedIndex: 9, committedIndex: 9, backupsInSync: 0, alone: true }),
        { address: "127.0.0.1:5200", reachable: false, error: "connect ECONNREFUSED" },
      ],
    },
  });
}

const at = (width: number, height: number, selectedShard?: number, detail = true): RenderOptions => ({
  target: "127.0.0.1:6000", width, height, nowMs: 0, intervalMs: 1000, live: true, selectedShard, detail,
});

function rowOf(text: string, address: string): string {
  return text.split("\n").find((l) => l.startsWith(address))!;
}

test("the detail view lists every replica of the shard with role, epoch, applied index, lag and ISR membership", () => {
  const text = frameText(render(view(), at(200, 50, 0)));
  expect(text).toContain("SHARD 0   3 replicas   epoch 7   primary 127.0.0.1:5000");
  expect(text).toContain("committed 120   1 backup in sync   ISR (etcd) r-a, r-b");
  expect(text).toContain("tasks  queued 17   leased 5   completed 900   failed 4   dead-letter 2");
  expect(rowOf(text, "127.0.0.1:5000")).toMatch(/primary\s+7\s+120\s+-\s+1 in sync/);
  expect(rowOf(text, "127.0.0.1:5001")).toMatch(/backup\s+7\s+117\s+3\s+in ISR\s+127\.0\.0\.1:5000\s+r-b/);
  expect(rowOf(text, "127.0.0.1:5002")).toMatch(/backup\s+6\s+40\s+80\s+not in ISR/);
  expect(text).toContain("127.0.0.1:5002 may not lead: not in the ISR");
  // Another shard's replicas are not in it.
  expect(text).not.toContain("127.0.0.1:5100");
});

test("it fits 80 columns and 24 rows, keeping role, epoch, lag and ISR", () => {
  const lines = render(view(), at(79, 24, 0));
  expect(lines.length).toBeLessThanOrEqual(24);
  for (const l of lines) expect(Array.from(l.text).length).toBeLessThanOrEqual(79);
  const header = lines.find((l) => l.text.startsWith("ADDRESS"))!.text;
  for (const column of ["ROLE", "EPOCH", "APPLIED", "LAG", "IN SYNC"]) expect(header).toContain(column);
  expect(lines.find((l) => l.text.startsWith("127.0.0.1:5001"))!.text).not.toContain("…");
});

test("a single node acknowledging alone, and a shard nobody reports", () => {
  expect(rowOf(frameText(render(view(), at(200, 50, 1))), "127.0.0.1:5100")).toMatch(/primary\s+7\s+9\s+-\s+alone/);
  expect(frameText(render(view(), at(200, 50, 4)))).toContain("SHARD 4: no replica reports this shard (yet)");
});

test("the tables highlight the selected shard's rows; arrows step through the shards, wrapping", () => {
  const lines = render(view(), at(200, 50, 1, false));
  expect(lines.find((l) => l.text.startsWith("127.0.0.1:5100"))!.style).toBe("selected");
  expect(lines.find((l) => l.text.startsWith("127.0.0.1:5000"))!.style).toBe("normal");
  expect(shardsOf(view())).toEqual([0, 1]);
  expect(stepShard([0, 1], undefined, 1)).toBe(0);
  expect(stepShard([0, 1], undefined, -1)).toBe(1);
  expect(stepShard([0, 1], 1, 1)).toBe(0);
  expect(stepShard([0, 1], 0, -1)).toBe(1);
  expect(stepShard([], 0, 1)).toBeUndefined();
});

test("the help overlay names the shard keys", () => {
  const text = frameText(render(view(), { ...at(200, 50), help: true }));
  expect(text).toContain("Up/Down, 0-9");
  expect(text).toContain("replicas, roles, ISR, epoch, lag");
});
