// sparkline(): eight block heights scaled from zero, gaps for failed polls.

import { describe, expect, test } from "bun:test";
import { SPARK_BLOCKS, sparkline } from "../../src/top/sparkline.ts";

describe("sparkline", () => {
  test("scales from 0 to the largest value, one character per value", () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7])).toBe("▁▂▃▄▅▆▇█");
    expect(sparkline([7, 0, 7])).toBe("█▁█");
  });

  test("an explicit max caps the scale and clamps larger values", () => {
    expect(sparkline([7, 14], 14)).toBe("▅█");
    expect(sparkline([28], 14)).toBe("█");
  });

  test("any traffic is visible against idle, however small next to the peak", () => {
    expect(sparkline([0, 1, 10_000])).toBe("▁▂█");
  });

  test("a steady load is flat at the top, not magnified noise", () => {
    expect(sparkline([1000, 1001, 999])).toBe("███");
  });

  test("null (a failed poll) is a gap; all zero or empty is flat or nothing", () => {
    expect(sparkline([5, null, 5])).toBe("█ █");
    expect(sparkline([0, 0])).toBe("▁▁");
    expect(sparkline([])).toBe("");
    expect(sparkline([null, Number.NaN])).toBe("  ");
  });

  test("uses only the eight blocks and the gap", () => {
    const values = Array.from({ length: 200 }, (_, i) => Math.abs(Math.sin(i / 7)) * 1e5);
    const line = sparkline(values);
    expect(Array.from(line)).toHaveLength(200);
    for (const ch of line) expect(SPARK_BLOCKS as readonly string[]).toContain(ch);
  });
});
