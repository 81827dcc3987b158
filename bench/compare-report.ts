// The table bench/compare.ts prints (Markdown, so it can go into
// docs/benchmarks.md as it is), its CSV, and the targets checked
// against the measured medians.

export type SystemName = "ours-full" | "ours-single" | "bullmq";
export type WorkloadKey = "throughput" | "open-common" | "open-half" | "closed";

export interface Measured {
  runs: number;
  throughput: number;
  offeredRate?: number;
  p50: number;
  p95: number;
  p99: number;
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

const LABELS: Record<SystemName, string> = { "ours-full": "ours, full path", "ours-single": "ours, 1 coordinator", bullmq: "BullMQ + Redis" };

/** The targets. */
export const TARGET_FULL_OVER_BULLMQ = 10;
export const TARGET_P99_MS_AT_HALF = 5;
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
  pick: (m: Measured) => number | undefined;
}

function rowSpecs(c: TableContext): RowSpec[] {
  const a = `(a) no-op throughput, ${c.tasks.toLocaleString("en-US")} tasks`;
  const b = `(b) open loop at ${c.commonRate.toLocaleString("en-US")}/s`;
  const h = "(b) open loop at half its own (a)";
  const k = `(c) closed loop, ${c.clients} clients`;
  return [
    { workload: a, figure: "tasks/s", key: "throughput", pick: (m) => m.throughput },
    { workload: b, figure: "achieved tasks/s", key: "open-common", pick: (m) => m.throughput },
    { workload: b, figure: "p50 ms", key: "open-common", pick: (m) => m.p50 },
    { workload: b, figure: "p99 ms", key: "open-common", pick: (m) => m.p99 },
    { workload: h, figure: "offered tasks/s", key: "open-half", pick: (m) => m.offeredRate },
    { workload: h, figure: "achieved tasks/s", key: "open-half", pick: (m) => m.throughput },
    { workload: h, figure: "p50 ms", key: "open-half", pick: (m) => m.p50 },
    { workload: h, figure: "p99 ms", key: "open-half", pick: (m) => m.p99 },
    { workload: k, figure: "tasks/s", key: "closed", pick: (m) => m.throughput },
    { workload: k, figure: "p50 ms", key: "closed", pick: (m) => m.p50 },
    { workload: k, figure: "p99 ms", key: "closed", pick: (m) => m.p99 },
  ];
}

export function compareTable(results: Map<string, Measured>, systems: SystemName[], c: TableContext): { text: string; csv: string } {
  const get = (s: SystemName, k: WorkloadKey) => results.get(`${s}/${k}`);
  const ours = systems.filter((s) => s !== "bullmq");
  const withBullmq = systems.includes("bullmq");
  const header = ["workload", "figure", ...systems.map((s) => LABELS[s]), ...(withBullmq ? ours.map((s) => `${LABELS[s]} / BullMQ`) : [])];
  const rows = rowSpecs(c).map((r) => {
    const value = (s: SystemName) => {
      const m = get(s, r.key);
      return m === undefined ? undefined : r.pick(m);
    };
    const cells = [r.workload, r.figure, ...systems.map((s) => fmt(value(s)))];
    if (withBullmq) cells.push(...ours.map((s) => ratio(value(s), value("bullmq"))));
    return cells;
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
  const full = results.get("ours-full/throughput")?.throughput;
  const bull = results.get("bullmq/throughput")?.throughput;
  if (full !== undefined && bull !== undefined && bull > 0) {
    lines.push(`target: full-path no-op throughput >= ${TARGET_FULL_OVER_BULLMQ}x BullMQ: ${verdict(full >= TARGET_FULL_OVER_BULLMQ * bull)} (${fmt(full)} vs ${fmt(bull)} tasks/s, ${ratio(full, bull)})`);
  }
  for (const s of ["ours-full", "ours-single"] as const) {
    const half = results.get(`${s}/open-half`);
    if (half !== undefined) {
      lines.push(`target: p99 < ${TARGET_P99_MS_AT_HALF} ms at half of max throughput (${LABELS[s]}, ${fmt(half.offeredRate)}/s): ${verdict(half.p99 < TARGET_P99_MS_AT_HALF)} (p99 ${fmt(half.p99)} ms)`);
    }
  }
  const single = results.get("ours-single/throughput")?.throughput;
  if (single !== undefined) {
    lines.push(`target: one coordinator, no router >= ${TARGET_SINGLE_TASKS_PER_S.toLocaleString("en-US")} tasks/s: ${verdict(single >= TARGET_SINGLE_TASKS_PER_S)} (${fmt(single)} tasks/s)`);
  }
  return lines;
}
