// The table bench/compare.ts prints (Markdown, so it can go into
// docs/benchmarks.md as it is), its CSV, and the issue's targets checked
// against the measured medians.

export type OursName = "ours-full" | "ours-durable" | "ours-durable-interval" | "ours-single";
export const JETSTREAM = ["jetstream-memory", "jetstream-file", "jetstream-r3"] as const;
export type PeerName = "bullmq" | (typeof JETSTREAM)[number];
export type SystemName = OursName | PeerName;
/** open-peer-half: ours at half of its JetStream counterpart's (a) median, the rate that counterpart's open-half ran at. */
export type WorkloadKey = "throughput" | "open-common" | "open-half" | "open-peer-half" | "closed";

/** The JetStream set-up each of ours is measured against (issue 17): the durable pair against the replicated file stream. */
export const COUNTERPART: Record<OursName, PeerName> = {
  "ours-single": "jetstream-memory", "ours-full": "jetstream-memory", "ours-durable": "jetstream-r3", "ours-durable-interval": "jetstream-r3",
};
/** The fsync interval of ours-durable-interval: JetStream's file store syncs every 2 minutes by default, so this is the stricter. */
export const DURABLE_FSYNC_INTERVAL_MS = 100;
const isOurs = (s: SystemName): s is OursName => s.startsWith("ours-");

export interface Measured {
  runs: number;
  throughput: number;
  offeredRate?: number;
  p50: number;
  p95: number;
  p99: number;
  /** Open loop: p99 from each task's real send time, the load generator's own lateness left out. */
  p99FromSent?: number;
  max: number;
  completed: number;
  failed: number;
  notes: string[];
  /** CPU other processes used meanwhile, in % of one core: a figure measured beside someone else's load is suspect. */
  othersCorePercent?: number;
}

export interface TableContext {
  commonRate: number;
  clients: number;
  tasks: number;
}

const LABELS: Record<SystemName, string> = {
  "ours-full": "ours, full path", "ours-durable": "ours, full path, --data-dir", "ours-single": "ours, 1 coordinator", bullmq: "BullMQ + Redis",
  "ours-durable-interval": `ours, full path, --data-dir --fsync-interval-ms ${DURABLE_FSYNC_INTERVAL_MS}`,
  "jetstream-memory": "JetStream memory", "jetstream-file": "JetStream file", "jetstream-r3": "JetStream file R3",
};

/** The issues' targets: 10 (BullMQ) and 17 (JetStream). */
export const TARGET_FULL_OVER_BULLMQ = 10;
export const TARGET_OVER_JETSTREAM = 2;
export const TARGET_DURABLE_OVER_R3 = 3;
export const TARGET_P99_MS_AT_COMMON = 2;
export const TARGET_SINGLE_TASKS_PER_S = 250_000;

const fmt = (v: number | undefined): string => {
  if (v === undefined || !Number.isFinite(v)) return "–";
  if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString("en-US");
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
};

const ratio = (ours: number | undefined, theirs: number | undefined): string => {
  if (ours === undefined || theirs === undefined || !Number.isFinite(ours) || !Number.isFinite(theirs) || theirs === 0) return "–";
  const r = ours / theirs;
  return `${r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2)}x`;
};

interface RowSpec {
  workload: string;
  figure: string;
  key: WorkloadKey;
  /** The peers' measurement in this row when it is not `key` (the same rate, named from their side). */
  peerKey?: WorkloadKey;
  pick: (m: Measured) => number | undefined;
}

function rowSpecs(c: TableContext): RowSpec[] {
  const a = `(a) no-op throughput, ${c.tasks.toLocaleString("en-US")} tasks`;
  const b = `(b) open loop at ${c.commonRate.toLocaleString("en-US")}/s`;
  const h = "(b) open loop at half its own (a)";
  const j = "(b) open loop at half its JetStream counterpart's (a)";
  const k = `(c) closed loop, ${c.clients} clients`;
  return [
    { workload: a, figure: "tasks/s", key: "throughput", pick: (m) => m.throughput },
    { workload: b, figure: "achieved tasks/s", key: "open-common", pick: (m) => m.throughput },
    { workload: b, figure: "p50 ms", key: "open-common", pick: (m) => m.p50 },
    { workload: b, figure: "p99 ms", key: "open-common", pick: (m) => m.p99 },
    { workload: b, figure: "p99 ms from sent", key: "open-common", pick: (m) => m.p99FromSent },
    { workload: h, figure: "offered tasks/s", key: "open-half", pick: (m) => m.offeredRate },
    { workload: h, figure: "achieved tasks/s", key: "open-half", pick: (m) => m.throughput },
    { workload: h, figure: "p50 ms", key: "open-half", pick: (m) => m.p50 },
    { workload: h, figure: "p99 ms", key: "open-half", pick: (m) => m.p99 },
    { workload: j, figure: "offered tasks/s", key: "open-peer-half", peerKey: "open-half", pick: (m) => m.offeredRate },
    { workload: j, figure: "p50 ms", key: "open-peer-half", peerKey: "open-half", pick: (m) => m.p50 },
    { workload: j, figure: "p99 ms", key: "open-peer-half", peerKey: "open-half", pick: (m) => m.p99 },
    { workload: j, figure: "p99 ms from sent", key: "open-peer-half", peerKey: "open-half", pick: (m) => m.p99FromSent },
    { workload: k, figure: "tasks/s", key: "closed", pick: (m) => m.throughput },
    { workload: k, figure: "p50 ms", key: "closed", pick: (m) => m.p50 },
    { workload: k, figure: "p99 ms", key: "closed", pick: (m) => m.p99 },
  ];
}

/** The ratio columns: each of ours against its JetStream counterpart, and the full path against BullMQ. */
function ratioColumns(systems: SystemName[]): Array<[OursName, PeerName]> {
  const ours = systems.filter(isOurs);
  const pairs: Array<[OursName, PeerName]> = ours.filter((s) => systems.includes(COUNTERPART[s])).map((s) => [s, COUNTERPART[s]]);
  if (systems.includes("bullmq") && ours.includes("ours-full")) pairs.push(["ours-full", "bullmq"]);
  return pairs;
}

export function compareTable(results: Map<string, Measured>, systems: SystemName[], c: TableContext): { text: string; csv: string } {
  const pairs = ratioColumns(systems);
  const header = ["workload", "figure", ...systems.map((s) => LABELS[s]), ...pairs.map(([a, b]) => `${LABELS[a]} / ${LABELS[b]}`)];
  const rows = rowSpecs(c).map((r) => {
    const value = (s: SystemName) => {
      const m = results.get(`${s}/${isOurs(s) ? r.key : (r.peerKey ?? r.key)}`);
      return m === undefined ? undefined : r.pick(m);
    };
    return [r.workload, r.figure, ...systems.map((s) => fmt(value(s))), ...pairs.map(([a, b]) => ratio(value(a), value(b)))];
  });
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  const align = ["---", "---", ...header.slice(2).map(() => "---:")];
  const text = [line(header), line(align), ...rows.map(line)].join("\n") + "\n";
  const csvHeader = "system,workload,offered_rate,throughput,p50,p95,p99,max,completed,failed,runs,others_cpu_pct";
  const csvRows = [...results.entries()].map(([key, m]) => {
    const [system, workload] = key.split("/");
    const cell = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "" : String(v));
    return [system, workload, cell(m.offeredRate), m.throughput, cell(m.p50), cell(m.p95), cell(m.p99), cell(m.max), m.completed, m.failed, m.runs, cell(m.othersCorePercent)].join(",");
  });
  return { text, csv: [csvHeader, ...csvRows].join("\n") + "\n" };
}

/** One line per target: met or not, with the numbers. */
export function targetLines(results: Map<string, Measured>): string[] {
  const lines: string[] = [];
  const verdict = (ok: boolean) => (ok ? "MET" : "NOT MET");
  const get = (s: SystemName, k: WorkloadKey) => results.get(`${s}/${k}`);
  const full = get("ours-full", "throughput")?.throughput;
  const bull = get("bullmq", "throughput")?.throughput;
  if (full !== undefined && bull !== undefined && bull > 0) {
    lines.push(`target: full-path no-op throughput >= ${TARGET_FULL_OVER_BULLMQ}x BullMQ: ${verdict(full >= TARGET_FULL_OVER_BULLMQ * bull)} (${fmt(full)} vs ${fmt(bull)} tasks/s, ${ratio(full, bull)})`);
  }
  for (const s of Object.keys(COUNTERPART) as OursName[]) {
    const theirs = COUNTERPART[s];
    const goal = theirs === "jetstream-r3" ? TARGET_DURABLE_OVER_R3 : TARGET_OVER_JETSTREAM;
    for (const [k, what] of [["throughput", "512 in flight"], ["closed", "64 in flight"]] as const) {
      const a = get(s, k)?.throughput;
      const b = get(theirs, k)?.throughput;
      if (a !== undefined && b !== undefined && b > 0) lines.push(`target: ${LABELS[s]} >= ${goal}x ${LABELS[theirs]}, ${what}: ${verdict(a >= goal * b)} (${fmt(a)} vs ${fmt(b)} tasks/s, ${ratio(a, b)})`);
    }
    const common = get(s, "open-common");
    if (common !== undefined) lines.push(`target: p99 <= ${TARGET_P99_MS_AT_COMMON} ms at ${fmt(common.offeredRate)}/s (${LABELS[s]}): ${verdict(common.p99 <= TARGET_P99_MS_AT_COMMON)} (p99 ${fmt(common.p99)} ms${common.p99FromSent === undefined ? "" : `; ${fmt(common.p99FromSent)} ms from sent`})`);
    const mine = get(s, "open-peer-half");
    const their = get(theirs, "open-half");
    if (mine !== undefined && their !== undefined) {
      lines.push(`target: p99 <= ${LABELS[theirs]}'s at half its maximum, ${fmt(their.offeredRate)}/s (${LABELS[s]}): ${verdict(mine.p99 <= their.p99)} (${fmt(mine.p99)} vs ${fmt(their.p99)} ms)`);
    }
  }
  const single = get("ours-single", "throughput")?.throughput;
  if (single !== undefined) {
    lines.push(`target: one coordinator, no router >= ${TARGET_SINGLE_TASKS_PER_S.toLocaleString("en-US")} tasks/s: ${verdict(single >= TARGET_SINGLE_TASKS_PER_S)} (${fmt(single)} tasks/s)`);
  }
  return lines;
}
