// A one-line chart of a series with the eight unicode block heights. Pure.

export const SPARK_BLOCKS = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"] as const;

/** Drawn for a point with no value (a failed poll): a gap, not a zero. */
export const SPARK_GAP = " ";

/**
 * One character per value, oldest first, scaled from 0 to `max` (default: the
 * largest value). Scaling from 0 rather than from the minimum keeps a steady
 * load flat instead of magnifying noise; any value above 0 gets at least the
 * second block so a trickle is visible against idle.
 */
export function sparkline(values: readonly (number | null)[], max?: number): string {
  const top = max ?? values.reduce<number>((m, v) => (v !== null && v > m ? v : m), 0);
  let out = "";
  for (const v of values) {
    if (v === null || !Number.isFinite(v)) {
      out += SPARK_GAP;
      continue;
    }
    if (v <= 0 || top <= 0) {
      out += SPARK_BLOCKS[0];
      continue;
    }
    const level = Math.round((Math.min(v, top) / top) * (SPARK_BLOCKS.length - 1));
    out += SPARK_BLOCKS[Math.max(1, level)];
  }
  return out;
}
