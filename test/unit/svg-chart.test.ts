// lineChartSvg(): the sweeps' chart is well-formed XML, has a marker per point,
// its labels, and never prints NaN or Infinity whatever the data.

import { describe, expect, test } from "bun:test";
import { escapeXml, formatTick, lineChartSvg, niceTicks, type ChartOptions } from "../../bench/svg-chart.ts";

/**
 * A tiny well-formedness check, enough for the SVG we generate: every tag is
 * closed in order, attributes are quoted, text holds no raw `<` or bare `&`.
 * Returns the element names in document order.
 */
function checkXml(xml: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  const tag = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>/y;
  const entity = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;
  let i = 0;
  while (i < xml.length) {
    const c = xml[i]!;
    if (c === "<") {
      tag.lastIndex = i;
      const m = tag.exec(xml);
      if (!m) throw new Error(`malformed tag at ${i}: ${xml.slice(i, i + 40)}`);
      const [all, closing, name, , selfClosing] = m;
      if (closing) {
        const open = stack.pop();
        if (open !== name) throw new Error(`</${name}> closes <${open}> at ${i}`);
      } else {
        names.push(name!);
        if (!selfClosing) stack.push(name!);
      }
      i += all.length;
    } else if (c === "&") {
      entity.lastIndex = i;
      const m = entity.exec(xml);
      if (!m) throw new Error(`bare & at ${i}`);
      i += m[0].length;
    } else {
      if (c === ">") throw new Error(`stray > at ${i}`);
      if (stack.length === 0 && c.trim() !== "") throw new Error(`text outside the root at ${i}`);
      i++;
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
  return names;
}

const markers = (svg: string) => svg.match(/class="marker"/g)?.length ?? 0;
const noBadNumbers = (svg: string) => expect(svg).not.toMatch(/NaN|Infinity|undefined/);

function sweep(over: Partial<ChartOptions> = {}): ChartOptions {
  return {
    title: "Sweep: clients",
    subtitle: "noop & friends <via router>",
    xLabel: "tasks in flight",
    leftLabel: "throughput (tasks/s)",
    rightLabel: "p99 latency (ms)",
    x: [1, 8, 64, 256, 1024],
    xScale: "log",
    series: [
      { name: "throughput", values: [3813, 25658, 86262, 132214, 118535], axis: "left" },
      { name: "p99 latency", values: [1.6, 2.3, 5.8, 10.5, 51.2], axis: "right" },
    ],
    ...over,
  };
}

describe("lineChartSvg", () => {
  test("is well-formed XML with one svg root", () => {
    const svg = lineChartSvg(sweep());
    const names = checkXml(svg);
    expect(names[0]).toBe("svg");
    expect(names.filter((n) => n === "svg")).toHaveLength(1);
    expect(svg).toContain('xmlns="http://www.w3.org/2000/svg"');
    noBadNumbers(svg);
  });

  test("one marker per point and series, one line per series", () => {
    const svg = lineChartSvg(sweep());
    expect(markers(svg)).toBe(10);
    expect(svg.match(/<circle class="marker"/g)).toHaveLength(5);
    expect(svg.match(/<rect class="marker"/g)).toHaveLength(5);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
  });

  test("title, axis labels, legend and x tick labels are there, escaped", () => {
    const svg = lineChartSvg(sweep());
    for (const text of ["Sweep: clients", "tasks in flight", "throughput (tasks/s)", "p99 latency (ms)", "throughput (left axis)", "p99 latency (right axis)", ">1024<", ">150k<"]) {
      expect(svg).toContain(text);
    }
    expect(svg).toContain("noop &amp; friends &lt;via router&gt;");
  });

  test("a subtitle too long for the width is squeezed to fit, a short one is not", () => {
    const long = lineChartSvg(sweep({ subtitle: "x".repeat(300) }));
    checkXml(long);
    expect(long).toMatch(/<text [^>]*textLength="736" lengthAdjust="spacingAndGlyphs"[^>]*>x{300}</);
    expect(lineChartSvg(sweep())).not.toContain("textLength");
  });

  test("categorical x keeps workload names in order", () => {
    const names = ["noop", "cpu", "sleep", "mixed", "wordcount"];
    const svg = lineChartSvg(sweep({ x: names, xScale: undefined }));
    checkXml(svg);
    const positions = names.map((n) => svg.indexOf(`>${n}<`));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    expect(markers(svg)).toBe(10);
    noBadNumbers(svg);
  });

  test("a single point", () => {
    for (const xScale of ["linear", "log", "category"] as const) {
      const svg = lineChartSvg(sweep({ x: [4], xScale, series: [{ name: "t", values: [5000], axis: "left" }, { name: "p99", values: [3], axis: "right" }] }));
      checkXml(svg);
      expect(markers(svg)).toBe(2);
      expect(svg).not.toContain("<polyline");
      noBadNumbers(svg);
    }
  });

  test("zero values, equal x and empty series give finite numbers", () => {
    const zero = lineChartSvg(sweep({ x: [1, 2, 4], series: [{ name: "t", values: [0, 0, 0], axis: "left" }, { name: "p99", values: [0, 0, 0], axis: "right" }] }));
    checkXml(zero);
    expect(markers(zero)).toBe(6);
    noBadNumbers(zero);
    noBadNumbers(lineChartSvg(sweep({ x: [3, 3], xScale: "linear", series: [{ name: "t", values: [1, 2], axis: "left" }, { name: "p", values: [1, 1], axis: "right" }] })));
    noBadNumbers(lineChartSvg(sweep({ x: [], series: [] })));
  });

  test("a dashed series is dashed in the plot and in the legend, a plain one is not", () => {
    const svg = lineChartSvg(sweep({ series: [{ name: "ours", values: [1, 2, 3, 4, 5], axis: "left" }, { name: "theirs", values: [2, 3, 4, 5, 6], axis: "left", dashed: true }] }));
    checkXml(svg);
    expect(svg.match(/<polyline [^>]*stroke-dasharray="7 4"/g)).toHaveLength(1);
    expect(svg.match(/<line [^>]*stroke-dasharray="7 4"/g)).toHaveLength(1);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
  });

  test("a legend too wide for one row wraps into rows inside the width, and the plot starts below it", () => {
    const names = ["ours p50", "ours p99", "ours p99.9", "ours achieved", "JetStream p50", "JetStream p99", "JetStream p99.9", "JetStream achieved"];
    const series = names.map((name, i) => ({ name, values: [1, 2, 3, 4, 5].map((v) => v * (i + 1)), axis: name.endsWith("achieved") ? "right" as const : "left" as const }));
    const width = 900;
    const svg = lineChartSvg(sweep({ series, width }));
    checkXml(svg);
    const items = [...svg.matchAll(/<text x="([\d.]+)" y="([\d.]+)"[^>]*>([^<]*\((?:left|right) axis\))</g)].map((m) => ({ x: Number(m[1]), y: Number(m[2]), label: m[3]! }));
    expect(items.map((i) => i.label.replace(/ \((left|right) axis\)$/, ""))).toEqual(names);
    const rows = new Set(items.map((i) => i.y));
    expect(rows.size).toBeGreaterThan(1);
    for (const i of items) {
      expect(i.x).toBeGreaterThan(0);
      expect(i.x + i.label.length * 13 * 0.6).toBeLessThan(width);
    }
    // The top of the plot (the left axis starts there) lies below the lowest legend row.
    const axisTop = Number(svg.match(/<line x1="84" y1="([\d.]+)" x2="84"/)![1]);
    expect(axisTop).toBeGreaterThan(Math.max(...rows));
  });

  test("a missing value (failed run) leaves a gap, not a NaN", () => {
    const svg = lineChartSvg(sweep({ series: [{ name: "t", values: [1, 2, 3, 4, 5], axis: "left" }, { name: "p99", values: [1, NaN, 3, 4, Infinity], axis: "right" }] }));
    checkXml(svg);
    expect(markers(svg)).toBe(8);
    expect(svg.match(/<polyline /g)).toHaveLength(2);
    noBadNumbers(svg);
  });
});

describe("helpers", () => {
  test("niceTicks starts at 0 and covers the max", () => {
    expect(niceTicks(132214)).toEqual([0, 50000, 100000, 150000]);
    expect(niceTicks(51.2)).toEqual([0, 20, 40, 60]);
    expect(niceTicks(6500)).toEqual([0, 2000, 4000, 6000, 8000]);
    expect(niceTicks(0)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(NaN)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  });

  test("formatTick and escapeXml", () => {
    expect([0, 0.25, 2.5, 60, 1500, 150000, 2_000_000].map(formatTick)).toEqual(["0", "0.25", "2.5", "60", "1500", "150k", "2M"]);
    expect(escapeXml(`a<b & "c" 'd'>`)).toBe("a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;");
  });
});
