// render(): the frame top draws and --once prints, from views built by TopModel.

import { describe, expect, test } from "bun:test";
import type { ClusterStats, CoordinatorStats, WorkerInfo } from "../../src/protocol/messages.ts";
import { fittedTable, table } from "../../src/top/format.ts";
import { TopModel, type DashboardView, type Poll } from "../../src/top/model.ts";
import { frameText, limitRows, render, wrapItems, type RenderOptions } from "../../src/top/render.ts";

function worker(over: Partial<WorkerInfo> = {}): WorkerInfo {
  return { id: 1, nodeId: "worker-1", slots: 8, free: 3, done: 1234, failed: 2, heartbeatAgeMs: 120, tags: ["cpu", "io"], ...over };
}

function coordinator(over: Partial<CoordinatorStats> = {}): CoordinatorStats {
  return {
    requestId: 1, nodeId: "coordinator-5000", shard: 0, epoch: 3, primary: true, uptimeMs: 65_000,
    replication: { role: "primary", appliedIndex: 900, committedIndex: 900, backupsInSync: 1, alone: false },
    queued: 17, leased: 5, submitted: 1_300_000, completed: 1_234_567, failed: 10, retried: 3, rejectedQueueFull: 0, retained: 0,
    waiting: 0, delayed: 0, cancelled: 0, deadlineMissed: 0, dead: 0, unmatched: 0,
    latencyMs: { p50: 1.5, p99: 12.25, max: 20 }, workers: [worker()], ...over,
  };
}

function poll(atMs: number, coordinators: ClusterStats["coordinators"]): Poll {
  return {
    ok: true, atMs, target: "127.0.0.1:6000", serverRole: "router",
    stats: { requestId: 1, router: { nodeId: "r", uptimeMs: 1, clients: 1, forwarded: 0, retried: 0 }, coordinators },
  };
}

const WIDE: RenderOptions = { target: "127.0.0.1:6000", width: Infinity, height: Infinity, nowMs: 0, intervalMs: 1000, live: false };

function twoPolls(): DashboardView {
  const model = new TopModel();
  model.observe(poll(1000, [{ address: "127.0.0.1:5000", reachable: true, stats: coordinator({ completed: 1_234_567 - 2000 }) }]));
  return model.observe(poll(2000, [
    { address: "127.0.0.1:5000", reachable: true, stats: coordinator() },
    { address: "127.0.0.1:5100", reachable: false, error: "connect ECONNREFUSED 127.0.0.1:5100" },
  ]));
}

describe("render", () => {
  test("shows each coordinator's role, epoch, queues, totals, throughput and latency", () => {
    const text = frameText(render(twoPolls(), WIDE));
    const row = text.split("\n").find((l) => l.startsWith("127.0.0.1:5000"))!;
    expect(row).toBeDefined();
    for (const cell of ["coordinator-5000", "primary", "3", "17", "5", "1,234,567", "10", "2,000", "1.5", "12.3"]) expect(row).toContain(cell);
    expect(text).toContain("throughput 2,000 tasks/s");
    expect(text).toContain("completed 1,234,567");
    expect(text).toContain("queued 17 (0 unmatched)");
  });

  test("shows each worker's node, heartbeat age, busy/free slots, done, failed and tags", () => {
    const text = frameText(render(twoPolls(), WIDE));
    const row = text.split("\n").find((l) => l.includes("worker-1"))!;
    expect(row).toMatch(/^\s+0\s+worker-1\s+120 ms\s+5\s+3\s+8\s+1,234\s+2\s+cpu,io$/);
  });

  test("a coordinator the router cannot reach is shown as DOWN with its error", () => {
    const lines = render(twoPolls(), WIDE);
    expect(lines.find((l) => l.text.startsWith("127.0.0.1:5100"))).toMatchObject({ style: "error" });
    expect(lines.find((l) => l.text.includes("DOWN"))).toBeDefined();
    expect(lines).toContainEqual({ text: "coordinator 127.0.0.1:5100 unreachable: connect ECONNREFUSED 127.0.0.1:5100", style: "error" });
    expect(frameText(lines)).toContain("coordinators 1/2 reachable");
  });

  test("when top cannot reach the server it says so, greys the last figures and says how old they are", () => {
    const model = new TopModel();
    model.observe(poll(1000, [{ address: "127.0.0.1:5000", reachable: true, stats: coordinator() }]));
    const view = model.observe({ ok: false, atMs: 4000, target: "127.0.0.1:5000", error: "coordinator 127.0.0.1:5000 unreachable: Failed to connect (ECONNREFUSED)" });
    const lines = render(view, { ...WIDE, nowMs: 5000, live: true });
    expect(lines[1]).toEqual({ text: "! coordinator 127.0.0.1:5000 unreachable: Failed to connect (ECONNREFUSED)", style: "error" });
    expect(lines[2]!.text).toContain("reconnecting every 1.0 s; figures below are from 4.0 s ago");
    expect(lines.find((l) => l.text.startsWith("127.0.0.1:5000"))!.style).toBe("dim");
  });

  test("before the first answer it says it is connecting", () => {
    const lines = render(undefined, { ...WIDE, live: true });
    expect(lines.map((l) => l.text)).toEqual([expect.stringContaining("top  127.0.0.1:6000"), "connecting to 127.0.0.1:6000 ..."]);
    expect(lines[0]!.text).toContain("q quits");
  });

  test("fits the screen: no line wider, no more lines than rows, extra workers summarised", () => {
    const workers = Array.from({ length: 50 }, (_, i) => worker({ id: i, nodeId: `worker-${String(i).padStart(2, "0")}` }));
    const model = new TopModel();
    const view = model.observe(poll(1000, [{ address: "127.0.0.1:5000", reachable: true, stats: coordinator({ workers }) }]));
    for (const [width, height] of [[120, 40], [80, 24], [40, 12], [10, 3]] as const) {
      const lines = render(view, { ...WIDE, width, height, live: true });
      expect(lines.length).toBeLessThanOrEqual(height);
      for (const l of lines) expect(Array.from(l.text).length).toBeLessThanOrEqual(width);
    }
    const lines = render(view, { ...WIDE, width: 120, height: 40, live: true });
    expect(lines.length).toBe(40);
    expect(lines.at(-1)!.text).toMatch(/^\.\.\. \d+ more worker links/);
  });

  test("replication: backups in sync on a primary, the lag of a backup behind its primary", () => {
    const model = new TopModel();
    const view = model.observe(poll(1000, [
      { address: "127.0.0.1:5000", reachable: true, stats: coordinator() },
      {
        address: "127.0.0.1:5001", reachable: true,
        stats: coordinator({ nodeId: "backup-5001", primary: false, workers: [], replication: { role: "backup", appliedIndex: 880, committedIndex: 880, backupsInSync: 0, alone: false, following: "127.0.0.1:5000" } }),
      },
      { address: "127.0.0.1:5100", reachable: true, stats: coordinator({ nodeId: "alone-5100", shard: 1, workers: [], replication: { role: "primary", appliedIndex: 1, committedIndex: 1, backupsInSync: 0, alone: true } }) },
    ]));
    const rows = frameText(render(view, WIDE)).split("\n");
    expect(rows.find((l) => l.startsWith("127.0.0.1:5000"))).toMatch(/primary\s+3\s+1 in sync\s/);
    expect(rows.find((l) => l.startsWith("127.0.0.1:5001"))).toMatch(/backup\s+3\s+lag 20\s/);
    expect(rows.find((l) => l.startsWith("127.0.0.1:5100"))).toMatch(/primary\s+3\s+alone\s/);
    // Totals count the shard once: the backup's replicated counters are not added.
    expect(frameText(render(view, WIDE))).toContain("completed 2,469,134");
  });

  test("replication, etcd mode: a replica that may not lead says why in a word", () => {
    const waiting = (nodeId: string, port: number, notLeading: string) => ({
      address: `127.0.0.1:${port}`, reachable: true,
      stats: coordinator({ nodeId, shard: 2, primary: false, workers: [], replication: { role: "candidate" as const, appliedIndex: 5, committedIndex: 5, backupsInSync: 0, alone: false, notLeading } }),
    });
    const view = new TopModel().observe(poll(1000, [
      waiting("stale-5200", 5200, "not in the in-sync replicas (a, b): this node may lack acknowledged tasks, so it waits for a leader"),
      waiting("skewed-5201", 5201, "this node's clock is 7200000 ms off the last primary's (more than --max-clock-offset-ms 500)"),
    ]));
    const rows = frameText(render(view, WIDE)).split("\n");
    expect(rows.find((l) => l.startsWith("127.0.0.1:5200"))).toMatch(/not in ISR/);
    expect(rows.find((l) => l.startsWith("127.0.0.1:5201"))).toMatch(/clock off/);
  });

  test("a narrow screen drops optional columns before cutting the ones that matter", () => {
    const lines = render(twoPolls(), { ...WIDE, width: 100, height: 40 });
    const header = lines.find((l) => l.text.startsWith("ADDRESS"))!.text;
    expect(header).not.toContain("UPTIME");
    expect(header).toContain("P99 MS");
    expect(header.endsWith("…")).toBe(false);
  });

  test("--once frames are plain text", () => {
    const text = frameText(render(twoPolls(), WIDE));
    expect(text).not.toMatch(/\x1b/);
    expect(text.endsWith("\n")).toBe(true);
  });

  test("the history line carries the sparkline of cluster throughput", () => {
    const model = new TopModel();
    let view;
    for (let i = 0; i <= 8; i++) view = model.observe(poll(i * 1000, [{ address: "a:1", reachable: true, stats: coordinator({ completed: i * i * 100 }) }]));
    const spark = render(view!, WIDE).find((l) => l.style === "spark")!;
    expect(spark.text).toContain("peak 1,500/s over 9 polls");
    expect(spark.text.endsWith("  ▂▂▃▄▅▆▇█")).toBe(true);
  });
});

describe("layout helpers", () => {
  test("table pads columns and right-aligns numbers", () => {
    expect(table([{ title: "NAME", align: "left" }, { title: "N", align: "right" }], [["a", "1"], ["bbbbb", "100"]])).toEqual([
      "NAME     N",
      "a        1",
      "bbbbb  100",
    ]);
  });

  test("fittedTable drops the lowest-ranked optional column first", () => {
    const cols = [{ title: "A", align: "left" as const }, { title: "BBBB", align: "left" as const, dropRank: 2 }, { title: "CCCC", align: "left" as const, dropRank: 1 }];
    expect(fittedTable(cols, [], 10)).toEqual(["A  BBBB"]);
    expect(fittedTable(cols, [], 2)).toEqual(["A"]);
  });

  test("fittedTable leaves out a hideWhenEmpty column that has no values", () => {
    const cols = [{ title: "A", align: "left" as const }, { title: "R", align: "left" as const, hideWhenEmpty: true }];
    expect(fittedTable(cols, [["x", "-"], ["y", "-"]], 80)).toEqual(["A", "x", "y"]);
    expect(fittedTable(cols, [["x", "-"], ["y", "2"]], 80)).toEqual(["A  R", "x  -", "y  2"]);
  });

  test("wrapItems continues on an indented line", () => {
    expect(wrapItems("x  ", ["aaaa", "bbbb", "cc"], 12)).toEqual(["x  aaaa", "   bbbb   cc"]);
    expect(wrapItems("x  ", ["aaaa", "bbbb"], Infinity)).toEqual(["x  aaaa   bbbb"]);
  });

  test("limitRows keeps what fits and counts the rest", () => {
    const rows = Array.from({ length: 5 }, (_, i) => ({ text: `r${i}`, style: "normal" as const }));
    expect(limitRows(rows, 5, "x")).toHaveLength(5);
    expect(limitRows(rows, 3, "x").map((l) => l.text)).toEqual(["r0", "r1", "... 3 more x (enlarge the window)"]);
    expect(limitRows(rows, 0, "x").map((l) => l.text)).toEqual(["... 5 more x (enlarge the window)"]);
  });
});

describe("at 80 columns and with the help open", () => {
  test("an 80-column screen keeps role, epoch, queue, throughput and both latency columns", () => {
    const header = render(twoPolls(), { ...WIDE, width: 80, height: 24, live: true }).find((l) => l.text.startsWith("ADDRESS"))!.text;
    for (const column of ["ROLE", "EPOCH", "QUEUED", "TASKS/S", "P50 MS", "P99 MS"]) expect(header).toContain(column);
    expect(header.length).toBeLessThanOrEqual(80);
  });

  test("? shows the keys and what the columns mean, and the title says how to close it", () => {
    const lines = render(twoPolls(), { ...WIDE, width: 120, height: 40, live: true, help: true });
    const text = frameText(lines);
    expect(lines[0]!.text).toContain("? or Esc closes help");
    for (const words of ["KEYS", "open or close this help", "REPLICATION", "lag", "HEARTBEAT"]) expect(text).toContain(words);
    expect(text).not.toContain("127.0.0.1:5000  ");
    expect(render(twoPolls(), { ...WIDE, live: true }).at(0)!.text).toContain("? help");
  });
});
