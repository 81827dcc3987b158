// A small line chart as an SVG string, for the benchmark sweeps: one x axis
// (linear, log or categorical), a left and a right y axis, lines with a marker
// per point, a title and a legend. Pure: data in, text out; no DOM, no files.

export type XScale = "linear" | "log" | "category";

export interface ChartSeries {
  name: string;
  /** One value per x; a non-finite value leaves a gap (no marker, the line breaks). */
  values: number[];
  axis: "left" | "right";
  color?: string;
  /** A dashed line: tells two systems apart when their series share colours (ours solid, a peer's dashed). */
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  subtitle?: string;
  xLabel: string;
  leftLabel: string;
  rightLabel: string;
  /** The x of each point; strings force a categorical axis. */
  x: (number | string)[];
  series: ChartSeries[];
  /** Defaults to "category" when any x is a string, else "linear". */
  xScale?: XScale;
  width?: number;
  height?: number;
}

const MARGIN = { left: 84, right: 84, top: 88, bottom: 64 };
const PALETTE = ["#1f5fbf", "#d9480f", "#2b8a3e", "#862e9c"];
/** About this many intervals on each y axis: enough to read a value, few enough to stay legible. */
const Y_TICKS_TARGET = 5;
const FONT = "font-family=\"sans-serif\"";
const DASH = ` stroke-dasharray="7 4"`;
/** A legend too wide for one row wraps; the plot starts this much lower for each row past the first. */
const LEGEND_ROW_PX = 20;
const LEGEND_FONT_PX = 13;

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;" })[c]!);
}

/** A number as a short tick label: 1.5k, 2M, 0.25. */
export function formatTick(v: number): string {
  const abs = Math.abs(v);
  const trim = (s: string) => (s.includes(".") ? s.replace(/\.?0+$/, "") : s);
  if (abs >= 1e6) return `${trim((v / 1e6).toFixed(2))}M`;
  if (abs >= 1e4) return `${trim((v / 1e3).toFixed(1))}k`;
  if (abs >= 100 || v === 0) return String(Math.round(v));
  if (abs >= 1) return trim(v.toFixed(2));
  return trim(v.toPrecision(2));
}

/** Ticks from 0 to a "nice" top at or above `max` (steps of 1, 2, 2.5 or 5 times a power of ten). */
export function niceTicks(max: number, target = Y_TICKS_TARGET): number[] {
  const top = Number.isFinite(max) && max > 0 ? max : 1;
  const raw = top / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw)!;
  const count = Math.ceil(top / step - 1e-9);
  return Array.from({ length: count + 1 }, (_, i) => Number((i * step).toPrecision(12)));
}

const r = (v: number) => Number(v.toFixed(1));

/** Average glyph width of a sans-serif font as a fraction of its size: a guess, good enough to avoid clipping. */
const GLYPH_WIDTH_EM = 0.6;

/** A centered line of text, squeezed to fit `maxWidth` when it would run past the edges. */
function centeredText(text: string, x: number, y: number, size: number, maxWidth: number, extra: string): string {
  const fit = text.length * size * GLYPH_WIDTH_EM > maxWidth ? ` textLength="${r(maxWidth)}" lengthAdjust="spacingAndGlyphs"` : "";
  return `<text x="${r(x)}" y="${y}" text-anchor="middle" font-size="${size}"${fit} ${FONT} ${extra}>${escapeXml(text)}</text>`;
}

function xPositions(options: ChartOptions, scale: XScale, left: number, width: number): number[] {
  const n = options.x.length;
  if (scale === "category" || n < 2) {
    const band = width / Math.max(n, 1);
    return options.x.map((_, i) => left + band * (i + 0.5));
  }
  const f = scale === "log" ? (v: number) => Math.log(Math.max(v, 1e-12)) : (v: number) => v;
  const xs = options.x.map((v) => f(Number(v)));
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  // Pad by 6% on each side so end markers do not sit on the axes.
  const pad = width * 0.06;
  return xs.map((v) => (hi === lo ? left + width / 2 : left + pad + ((v - lo) / (hi - lo)) * (width - 2 * pad)));
}

function axisMax(series: ChartSeries[], axis: "left" | "right"): number {
  const values = series.filter((s) => s.axis === axis).flatMap((s) => s.values.filter(Number.isFinite));
  return values.length === 0 ? 0 : Math.max(...values);
}

function marker(kind: "left" | "right", x: number, y: number, color: string, cls: string, title?: string): string {
  const tip = title === undefined ? "" : `<title>${escapeXml(title)}</title>`;
  return kind === "left"
    ? `<circle class="${cls}" cx="${r(x)}" cy="${r(y)}" r="4.5" fill="${color}" stroke="#fff" stroke-width="1.5">${tip}</circle>`
    : `<rect class="${cls}" x="${r(x - 4.5)}" y="${r(y - 4.5)}" width="9" height="9" fill="${color}" stroke="#fff" stroke-width="1.5">${tip}</rect>`;
}

function yAxis(side: "left" | "right", ticks: number[], plot: Plot, label: string, color: string): string[] {
  const top = ticks.at(-1)!;
  const x = side === "left" ? plot.left : plot.right;
  const dir = side === "left" ? -1 : 1;
  const out = [`<line x1="${x}" y1="${plot.top}" x2="${x}" y2="${plot.bottom}" stroke="#333"/>`];
  for (const t of ticks) {
    const y = r(plot.bottom - (t / top) * (plot.bottom - plot.top));
    out.push(`<line x1="${x}" y1="${y}" x2="${x + 5 * dir}" y2="${y}" stroke="#333"/>`);
    const anchor = side === "left" ? "end" : "start";
    out.push(`<text x="${x + 8 * dir}" y="${y + 4}" text-anchor="${anchor}" font-size="12" ${FONT} fill="${color}">${escapeXml(formatTick(t))}</text>`);
    if (side === "left" && t > 0) out.push(`<line x1="${plot.left}" y1="${y}" x2="${plot.right}" y2="${y}" stroke="#e5e5e5"/>`);
  }
  const lx = side === "left" ? 20 : plot.width - 20;
  const cy = (plot.top + plot.bottom) / 2;
  const rot = side === "left" ? -90 : 90;
  out.push(`<text x="${lx}" y="${cy}" transform="rotate(${rot} ${lx} ${cy})" text-anchor="middle" font-size="13" ${FONT} fill="${color}">${escapeXml(label)}</text>`);
  return out;
}

interface Plot {
  left: number;
  right: number;
  top: number;
  bottom: number;
  width: number;
  height: number;
}

const legendLabel = (s: ChartSeries) => `${s.name} (${s.axis} axis)`;

/** Legend items all as wide as the longest label needs, as many to a row as the width holds. */
function legendLayout(series: ChartSeries[], width: number): { itemWidth: number; perRow: number; rows: number } {
  const itemWidth = Math.max(210, ...series.map((s) => 36 + legendLabel(s).length * LEGEND_FONT_PX * GLYPH_WIDTH_EM + 16));
  const perRow = Math.max(1, Math.floor((width - 24) / itemWidth));
  return { itemWidth, perRow, rows: Math.max(1, Math.ceil(series.length / perRow)) };
}

function legend(series: ChartSeries[], colors: string[], plot: Plot): string[] {
  const { itemWidth, perRow, rows } = legendLayout(series, plot.width);
  return series.flatMap((s, i) => {
    const row = Math.floor(i / perRow);
    const inRow = Math.min(perRow, series.length - row * perRow);
    const x = (plot.width - itemWidth * inRow) / 2 + (i % perRow) * itemWidth;
    const y = plot.top - 22 - (rows - 1 - row) * LEGEND_ROW_PX;
    return [
      `<line x1="${r(x)}" y1="${y}" x2="${r(x + 28)}" y2="${y}" stroke="${colors[i]}" stroke-width="2.5"${s.dashed ? DASH : ""}/>`,
      marker(s.axis, x + 14, y, colors[i]!, "legend-marker"),
      `<text x="${r(x + 36)}" y="${y + 4}" font-size="${LEGEND_FONT_PX}" ${FONT} fill="#222">${escapeXml(legendLabel(s))}</text>`,
    ];
  });
}

/** Renders the chart; every number in the output is finite whatever the input. */
export function lineChartSvg(options: ChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 440;
  const top = MARGIN.top + (legendLayout(options.series, width).rows - 1) * LEGEND_ROW_PX;
  const plot: Plot = { left: MARGIN.left, right: width - MARGIN.right, top, bottom: height - MARGIN.bottom, width, height };
  const scale: XScale = options.xScale ?? (options.x.some((v) => typeof v === "string") ? "category" : "linear");
  const xs = xPositions(options, scale, plot.left, plot.right - plot.left);
  const ticks = { left: niceTicks(axisMax(options.series, "left")), right: niceTicks(axisMax(options.series, "right")) };
  const colors = options.series.map((s, i) => s.color ?? PALETTE[i % PALETTE.length]!);
  const axisColor = (axis: "left" | "right") => colors[options.series.findIndex((s) => s.axis === axis)] ?? "#333";
  const yOf = (axis: "left" | "right", v: number) => plot.bottom - (v / ticks[axis].at(-1)!) * (plot.bottom - plot.top);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#fff"/>`,
    centeredText(options.title, width / 2, 26, 17, width - 24, `font-weight="bold" fill="#111"`),
  ];
  if (options.subtitle) out.push(centeredText(options.subtitle, width / 2, 46, 12, width - 24, `fill="#555"`));
  out.push(...yAxis("left", ticks.left, plot, options.leftLabel, axisColor("left")));
  out.push(...yAxis("right", ticks.right, plot, options.rightLabel, axisColor("right")));
  out.push(`<line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}" stroke="#333"/>`);
  options.x.forEach((v, i) => {
    const x = r(xs[i]!);
    out.push(`<line x1="${x}" y1="${plot.bottom}" x2="${x}" y2="${plot.bottom + 5}" stroke="#333"/>`);
    out.push(`<text x="${x}" y="${plot.bottom + 20}" text-anchor="middle" font-size="12" ${FONT} fill="#222">${escapeXml(String(v))}</text>`);
  });
  out.push(`<text x="${(plot.left + plot.right) / 2}" y="${height - 18}" text-anchor="middle" font-size="13" ${FONT} fill="#222">${escapeXml(options.xLabel)}</text>`);
  options.series.forEach((s, si) => {
    const color = colors[si]!;
    const points = s.values.map((v, i) => (Number.isFinite(v) && i < xs.length ? { x: xs[i]!, y: yOf(s.axis, v), v } : undefined));
    // Consecutive finite points form one polyline; a gap breaks it.
    const runs: string[][] = [[]];
    for (const p of points) {
      if (p === undefined) runs.push([]);
      else runs.at(-1)!.push(`${r(p.x)},${r(p.y)}`);
    }
    for (const run of runs.filter((x) => x.length > 1)) {
      out.push(`<polyline points="${run.join(" ")}" fill="none" stroke="${color}" stroke-width="2.5"${s.dashed ? DASH : ""}/>`);
    }
    points.forEach((p, i) => {
      if (p !== undefined) out.push(marker(s.axis, p.x, p.y, color, "marker", `${s.name} at ${options.x[i]}: ${p.v}`));
    });
  });
  out.push(...legend(options.series, colors, plot));
  out.push("</svg>");
  return out.join("\n") + "\n";
}
