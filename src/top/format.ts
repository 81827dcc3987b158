// Text helpers for the dashboard: numbers, durations, aligned tables. Pure,
// and locale-free so a frame reads the same on every machine and in tests.

/** 1234567 -> "1,234,567". */
export function count(n: number): string {
  const sign = n < 0 ? "-" : "";
  const digits = String(Math.trunc(Math.abs(n)));
  return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Throughput: whole numbers from 10 up, one decimal below; "-" when unknown. */
export function rate(perS: number | undefined): string {
  if (perS === undefined || !Number.isFinite(perS)) return "-";
  return perS >= 10 ? count(Math.round(perS)) : perS.toFixed(1);
}

/** Latency in ms with precision where it matters: 0.42, 3.1, 250. */
export function millis(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  if (ms < 1) return ms.toFixed(2);
  if (ms < 100) return ms.toFixed(1);
  return count(Math.round(ms));
}

/** A duration for people: "250 ms", "3.2 s", "4m05s", "2h03m". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return "-";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Cuts a line to `width` columns, marking the cut. Our text is one column per code point. */
export function fit(text: string, width: number): string {
  if (!Number.isFinite(width)) return text;
  const chars = Array.from(text);
  if (chars.length <= width) return text;
  if (width <= 0) return "";
  return chars.slice(0, width - 1).join("") + "…";
}

export interface Column {
  title: string;
  /** Numbers right-aligned so digits line up; names left. */
  align: "left" | "right";
  /** Optional columns go when the table is too wide, lowest rank first; required ones have none. */
  dropRank?: number;
  /** Left out when no row has a value ("-"): e.g. replication on a cluster without backups. */
  hideWhenEmpty?: boolean;
}

/**
 * Like table(), but first drops optional columns (lowest dropRank first) until
 * the lines fit `width`; what is still too wide is left for the caller to cut.
 */
export function fittedTable(columns: readonly Column[], rows: readonly (readonly string[])[], width: number): string[] {
  const empty = (i: number) => rows.every((r) => r[i] === undefined || r[i] === "" || r[i] === "-");
  let keep = columns.map((_, i) => i).filter((i) => !(columns[i]!.hideWhenEmpty && empty(i)));
  for (;;) {
    const lines = table(keep.map((i) => columns[i]!), rows.map((r) => keep.map((i) => r[i] ?? "")));
    const widest = Math.max(...lines.map((l) => Array.from(l).length));
    const droppable = keep.filter((i) => columns[i]!.dropRank !== undefined);
    if (widest <= width || droppable.length === 0) return lines;
    const drop = droppable.reduce((a, b) => (columns[b]!.dropRank! < columns[a]!.dropRank! ? b : a));
    keep = keep.filter((i) => i !== drop);
  }
}

/** A header line and one line per row, columns padded to their widest cell. */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string[] {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => Array.from(r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    columns
      .map((c, i) => {
        const cell = cells[i] ?? "";
        const pad = widths[i]! - Array.from(cell).length;
        // The last left-aligned column is not padded: no trailing blanks.
        if (c.align === "left" && i === columns.length - 1) return cell;
        return c.align === "right" ? " ".repeat(pad) + cell : cell + " ".repeat(pad);
      })
      .join("  ");
  return [line(columns.map((c) => c.title)), ...rows.map(line)];
}
