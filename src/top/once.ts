// `top --once`: one plain-text frame on stdout for scripts and CI logs. Two
// polls an interval apart, because throughput is a difference of counters and
// a single reading has none; `--interval-ms 0` takes the one reading only.

import type { TopConfig } from "./config.ts";
import { TopModel, type DashboardView } from "./model.ts";
import { frameText, render } from "./render.ts";
import { StatsSource } from "./stats-source.ts";

/** Prints the frame (or the error on stderr) and returns the exit status: 0 ok, 1 unreachable. */
export async function runOnce(config: TopConfig): Promise<number> {
  const model = new TopModel(config.historyMax);
  const source = new StatsSource({ targets: config.targets, timeoutMs: config.timeoutMs, token: config.token, tls: config.tls });
  try {
    let view: DashboardView = model.observe(await source.poll());
    // With several --servers, the first that answers (a failed poll moves on to the next).
    for (let tried = 1; view.error !== undefined && tried < config.targets.length; tried++) view = model.observe(await source.poll());
    if (view.error === undefined && config.intervalMs > 0) {
      await Bun.sleep(config.intervalMs);
      view = model.observe(await source.poll());
    }
    if (view.error !== undefined) {
      process.stderr.write(`top: ${view.error}\n`);
      return 1;
    }
    const lines = render(view, { target: source.address, width: Infinity, height: Infinity, nowMs: Date.now(), intervalMs: config.intervalMs, live: false });
    process.stdout.write(frameText(lines));
    return 0;
  } finally {
    source.close();
  }
}
