// Turns a DashboardView into styled lines of plain text that fit a screen.
// Pure: no terminal, no clock (the time to show is an argument), so the
// terminal-kit shell and `--once` print the very same frame and tests read it.

import type { CoordinatorStats, WorkerInfo } from "../protocol/messages.ts";
import { count, duration, fit, fittedTable, millis, rate, type Column } from "./format.ts";
import type { CoordinatorView, DashboardView } from "./model.ts";
import { shardDetailLines } from "./shard-detail.ts";
import { sparkline } from "./sparkline.ts";

/** How the shell paints a line; --once ignores it. */
export type LineStyle = "title" | "heading" | "normal" | "error" | "dim" | "spark" | "selected";

export interface Line {
  text: string;
  style: LineStyle;
}

export interface RenderOptions {
  /** "host:port" top polls; shown even before the first answer. */
  target: string;
  /** Columns; Infinity for --once (no cutting). */
  width: number;
  /** Rows; Infinity for --once. */
  height: number;
  /** Wall clock, for the time shown and the age of stale data. */
  nowMs: number;
  intervalMs: number;
  /** Live screen: mention the quit and help keys. */
  live: boolean;
  /** Show the help overlay instead of the tables. */
  help?: boolean;
  /** The shard picked with the arrow or number keys: its rows are highlighted. */
  selectedShard?: number;
  /** Show the selected shard's replicas instead of the tables. */
  detail?: boolean;
}

/** Narrowest sparkline worth drawing; below it the line shows only the numbers. */
const SPARK_WIDTH_MIN = 8;

// On a narrow screen the columns with a dropRank go first (lowest first), so
// what matters most (role, epoch, queue, throughput, latency) stays readable:
// at 80 columns the totals line above still shows completed, failed and retried.
const COORDINATOR_COLUMNS: readonly Column[] = [
  { title: "ADDRESS", align: "left" }, { title: "NODE", align: "left", dropRank: 6 }, { title: "SHARD", align: "right" },
  { title: "ROLE", align: "left" }, { title: "EPOCH", align: "right" }, { title: "REPLICATION", align: "left", dropRank: 7, hideWhenEmpty: true },
  { title: "QUEUED", align: "right" },
  { title: "LEASED", align: "right", dropRank: 3 }, { title: "COMPLETED", align: "right", dropRank: 5 }, { title: "FAILED", align: "right", dropRank: 4 },
  { title: "RETRIED", align: "right", dropRank: 2 }, { title: "TASKS/S", align: "right" }, { title: "P50 MS", align: "right" },
  { title: "P99 MS", align: "right" }, { title: "UPTIME", align: "right", dropRank: 1 },
];

const WORKER_COLUMNS: readonly Column[] = [
  { title: "SHARD", align: "right" }, { title: "NODE", align: "left" }, { title: "HEARTBEAT", align: "right" },
  { title: "BUSY", align: "right" }, { title: "FREE", align: "right" }, { title: "SLOTS", align: "right" },
  { title: "DONE", align: "right" }, { title: "FAILED", align: "right" }, { title: "TAGS", align: "left", dropRank: 1 },
];

export function render(view: DashboardView | undefined, options: RenderOptions): Line[] {
  const lines: Line[] = [titleLine(view, options)];
  if (options.help === true) return finish([...lines, ...HELP], options);
  if (options.detail === true && options.selectedShard !== undefined) return finish([...lines, ...shardDetailLines(view, options.selectedShard, options.width)], options);
  if (view === undefined) {
    lines.push({ text: `connecting to ${options.target} ...`, style: "dim" });
    return finish(lines, options);
  }
  if (view.error !== undefined) lines.push(...errorLines(view, options));
  lines.push(...summaryLines(view, options));
  const coordinators = coordinatorSection(view, options.width, options.selectedShard);
  const workers = workerSection(view, options.width);
  // Workers are the list that grows with the cluster; they give way first.
  const budget = options.height - lines.length - sectionLength(coordinators) - workers.before.length - workers.after.length;
  lines.push(...coordinators.before, ...coordinators.rows, ...coordinators.after);
  lines.push(...workers.before, ...limitRows(workers.rows, budget, "worker links"), ...workers.after);
  // While top cannot reach the server the figures are the last ones it got: greyed out.
  const stale = view.error !== undefined;
  return finish(stale ? lines.map((l) => (l.style === "normal" || l.style === "spark" || l.style === "selected" ? { ...l, style: "dim" } : l)) : lines, options);
}

/** The frame as text: what `top --once` prints. */
export function frameText(lines: readonly Line[]): string {
  return lines.map((l) => l.text).join("\n") + "\n";
}

function titleLine(view: DashboardView | undefined, o: RenderOptions): Line {
  const target = view?.target ?? o.target;
  const role = view?.serverRole !== undefined ? ` (${view.serverRole})` : "";
  const parts = [`top  ${target}${role}`, clock(o.nowMs)];
  if (o.live) parts.push(`every ${duration(o.intervalMs)}`, o.help === true ? "? or Esc closes help" : "q quits  ? help  Enter shard");
  return { text: parts.join("  |  "), style: "title" };
}

function errorLines(view: DashboardView, o: RenderOptions): Line[] {
  const lines: Line[] = [{ text: `! ${view.error}`, style: "error" }];
  const retry = o.live ? `reconnecting every ${duration(o.intervalMs)}; ` : "";
  const stale = view.lastOkAtMs !== undefined ? `figures below are from ${duration(o.nowMs - view.lastOkAtMs)} ago` : "no figures yet";
  lines.push({ text: `  ${retry}${stale}`, style: "error" });
  return lines;
}

function summaryLines(view: DashboardView, o: RenderOptions): Line[] {
  const t = view.totals;
  const cluster = [
    `coordinators ${t.reachable}/${t.coordinators} reachable`, `workers ${count(t.workers)}`,
    `slots ${count(t.slots)} (${count(t.busy)} busy)`, `throughput ${rate(t.throughputPerS)} tasks/s`,
  ];
  const tasks = [
    `queued ${count(t.queued)} (${count(t.unmatched)} unmatched)`, `leased ${count(t.leased)}`, `completed ${count(t.completed)}`,
    `failed ${count(t.failed)}`, `retried ${count(t.retried)}`, `rejected (queue full) ${count(t.rejectedQueueFull)}`,
  ];
  return [
    ...wrapItems("cluster   ", cluster, o.width).map((text) => ({ text, style: "normal" as const })),
    ...wrapItems("tasks     ", tasks, o.width).map((text) => ({ text, style: "normal" as const })),
    sparkLine(view.history, o.width),
  ];
}

/** Joins items on one line, continuing on indented lines when the screen is too narrow. */
export function wrapItems(prefix: string, items: readonly string[], width: number): string[] {
  const gap = "   ";
  const lines: string[] = [];
  let line = prefix;
  for (const item of items) {
    const joined = line.length === prefix.length ? line + item : line + gap + item;
    if (joined.length > width && line.length > prefix.length) {
      lines.push(line);
      line = " ".repeat(prefix.length) + item;
    } else line = joined;
  }
  lines.push(line);
  return lines;
}

/** Newest points on the right; on a narrow screen the oldest are dropped first. */
function sparkLine(history: readonly (number | null)[], width: number): Line {
  const peak = history.reduce<number>((m, v) => (v !== null && v > m ? v : m), 0);
  const label = `history   peak ${rate(peak)}/s over ${history.length} poll${history.length === 1 ? "" : "s"}  `;
  const room = Number.isFinite(width) ? width - label.length : history.length;
  if (room < Math.min(SPARK_WIDTH_MIN, history.length)) return { text: label.trimEnd(), style: "spark" };
  return { text: (label + sparkline(history.slice(-room), peak)).trimEnd(), style: "spark" };
}

interface Section {
  /** Blank line, heading, table header. */
  before: Line[];
  rows: Line[];
  /** Notes under the table (unreachable coordinators). */
  after: Line[];
}

function sectionLength(s: Section): number {
  return s.before.length + s.rows.length + s.after.length;
}

function coordinatorSection(view: DashboardView, width: number, selectedShard: number | undefined): Section {
  const sorted = [...view.coordinators].sort(
    (a, b) => (a.stats?.shard ?? Infinity) - (b.stats?.shard ?? Infinity) || a.address.localeCompare(b.address),
  );
  const [header, ...rows] = fittedTable(COORDINATOR_COLUMNS, sorted.map((c) => coordinatorCells(c, sorted)), width);
  return {
    before: [
      { text: "", style: "normal" },
      { text: `COORDINATORS (${view.coordinators.length})`, style: "heading" },
      { text: header!, style: "dim" },
    ],
    rows: rows.map((text, i) => ({ text, style: !sorted[i]!.reachable ? "error" : sorted[i]!.stats?.shard === selectedShard ? "selected" : "normal" })),
    after: sorted
      .filter((c) => !c.reachable)
      .map((c) => ({ text: `coordinator ${c.address} unreachable: ${c.error ?? "no stats"}`, style: "error" })),
  };
}

function coordinatorCells(c: CoordinatorView, all: readonly CoordinatorView[]): string[] {
  const s = c.stats;
  if (s === undefined || !c.reachable) return [c.address, s?.nodeId ?? "-", s ? String(s.shard) : "-", "DOWN"];
  return [
    c.address, s.nodeId, String(s.shard), s.replication?.role ?? (s.primary ? "primary" : "backup"), String(s.epoch),
    replication(s, all), count(s.queued), count(s.leased), count(s.completed), count(s.failed), count(s.retried),
    rate(c.throughputPerS), millis(s.latencyMs.p50), millis(s.latencyMs.p99), duration(s.uptimeMs),
  ];
}

/**
 * A primary: how many backups are in sync ("alone" when it acknowledges with
 * none). A backup: how many committed entries of its shard's primary it has
 * not applied yet, the figure that says whether a failover would be quick.
 */
function replication(s: CoordinatorStats, all: readonly CoordinatorView[]): string {
  const r = s.replication;
  // Older coordinators (and ones without peers) report no replication block.
  if (r === undefined) return "-";
  if (r.role === "primary") return r.alone ? "alone" : `${r.backupsInSync} in sync`;
  // etcd mode: a replica that may not lead (outside the ISR, clock too far off) says so.
  if (r.notLeading !== undefined) return /clock/.test(r.notLeading) ? "clock off" : "not in ISR";
  const primary = all.find((o) => o.stats?.shard === s.shard && o.stats.replication?.role === "primary")?.stats?.replication;
  return primary !== undefined ? `lag ${count(Math.max(0, primary.committedIndex - r.appliedIndex))}` : `applied ${count(r.appliedIndex)}`;
}

function workerSection(view: DashboardView, width: number): Section {
  const links: { shard: number; w: WorkerInfo }[] = [];
  for (const c of view.coordinators) for (const w of c.stats?.workers ?? []) links.push({ shard: c.stats!.shard, w });
  links.sort((a, b) => a.shard - b.shard || a.w.nodeId.localeCompare(b.w.nodeId) || a.w.id - b.w.id);
  const [header, ...rows] = fittedTable(WORKER_COLUMNS, links.map(({ shard, w }) => workerCells(shard, w)), width);
  return {
    before: [
      { text: "", style: "normal" },
      { text: `WORKERS (${links.length} link${links.length === 1 ? "" : "s"})`, style: "heading" },
      { text: header!, style: "dim" },
    ],
    rows: rows.map((text) => ({ text, style: "normal" })),
    after: [],
  };
}

function workerCells(shard: number, w: WorkerInfo): string[] {
  return [
    String(shard), w.nodeId || `#${w.id}`, duration(w.heartbeatAgeMs), count(w.slots - w.free), count(w.free),
    count(w.slots), count(w.done), count(w.failed), w.tags.length > 0 ? w.tags.join(",") : "-",
  ];
}

/** The help overlay: the keys, then what the less obvious columns mean. */
const HELP: readonly Line[] = [
  { text: "", style: "normal" },
  { text: "KEYS", style: "heading" },
  { text: "  q, Ctrl-C       quit (Esc too, when this help is closed)", style: "normal" },
  { text: "  ? or h          open or close this help", style: "normal" },
  { text: "  Up/Down, 0-9    select a shard (its rows are highlighted); a digit opens it", style: "normal" },
  { text: "  Enter           open or close the selected shard: replicas, roles, ISR, epoch, lag", style: "normal" },
  { text: "  Esc             close this help or the shard view", style: "normal" },
  { text: "  any other key   poll now", style: "normal" },
  { text: "", style: "normal" },
  { text: "COORDINATORS", style: "heading" },
  { text: "  ROLE          primary (takes submissions), backup (follows it), candidate (neither yet)", style: "normal" },
  { text: "  EPOCH         the primary's term: it only grows, and a lower one is fenced everywhere", style: "normal" },
  { text: "  REPLICATION   on a primary: backups in sync, or alone (acknowledging with none);", style: "normal" },
  { text: "                on a backup: lag (committed entries not applied yet); not in ISR or", style: "normal" },
  { text: "                clock off: an etcd-mode replica that may not lead, and why", style: "normal" },
  { text: "  TASKS/S       completed per second since the last poll; P50/P99 MS over the last 5 s", style: "normal" },
  { text: "  on a narrow screen UPTIME, RETRIED, LEASED, FAILED, COMPLETED, NODE, REPLICATION give way, in that order", style: "dim" },
  { text: "", style: "normal" },
  { text: "WORKERS (one row per worker link: a worker serving two shards has two)", style: "heading" },
  { text: "  HEARTBEAT     time since the coordinator last heard from it", style: "normal" },
  { text: "  BUSY/FREE     of the SLOTS it gave that coordinator", style: "normal" },
];

/** Keeps what fits in `budget` rows, the last one saying how many were left out. */
export function limitRows(rows: readonly Line[], budget: number, what: string): Line[] {
  if (rows.length <= budget) return [...rows];
  const shown = Math.max(0, budget - 1);
  return [...rows.slice(0, shown), { text: `... ${rows.length - shown} more ${what} (enlarge the window)`, style: "dim" }];
}

/** Cuts to the screen: extra rows dropped, long lines shortened. */
function finish(lines: Line[], o: RenderOptions): Line[] {
  const kept = Number.isFinite(o.height) ? lines.slice(0, Math.max(0, o.height)) : lines;
  return kept.map((l) => ({ text: fit(l.text, o.width), style: l.style }));
}

/** HH:MM:SS in UTC: the same on every machine, and what the logs use. */
function clock(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}
