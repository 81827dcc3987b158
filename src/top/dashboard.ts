// The live dashboard: poll, fold into the model, draw; until q or Ctrl-C.
// Polls never overlap: the next starts an interval after the previous one
// began, or at once if it took longer (a slow server slows top down with it).

import { LIVE_INTERVAL_MS_MIN, type TopConfig } from "./config.ts";
import { TopModel, type DashboardView } from "./model.ts";
import { render } from "./render.ts";
import { Screen } from "./screen.ts";
import { shardsOf, stepShard } from "./shard-detail.ts";
import { StatsSource } from "./stats-source.ts";

const QUIT_KEYS = new Set(["q", "Q", "CTRL_C", "CTRL_D", "ESCAPE"]);
const HELP_KEYS = new Set(["?", "h", "H"]);

/** Runs until the user quits; then restores the terminal and exits the process. */
export async function runDashboard(config: TopConfig): Promise<never> {
  const model = new TopModel(config.historyMax);
  const source = new StatsSource({ targets: config.targets, timeoutMs: config.timeoutMs, token: config.token, tls: config.tls });
  let view: DashboardView | undefined;
  let wake: (() => void) | undefined;
  let help = false;
  let selectedShard: number | undefined;
  let detail = false;

  // --interval-ms 0 means "one poll" for --once; live, it would spin on the server.
  const intervalMs = Math.max(LIVE_INTERVAL_MS_MIN, config.intervalMs);
  const draw = () =>
    screen.draw(render(view, { target: source.address, width: screen.width, height: screen.height, nowMs: Date.now(), intervalMs, live: true, help, selectedShard, detail }));
  const quit = (code: number, why?: string): never => {
    screen.close();
    source.close();
    if (why !== undefined) process.stderr.write(`top: ${why}\n`);
    process.exit(code);
  };
  const screen = new Screen({
    onKey: (name) => {
      // Esc closes the help or the shard view first; it quits only from the tables.
      if (HELP_KEYS.has(name) || (help && name === "ESCAPE")) {
        help = !help;
        draw();
      } else if (detail && name === "ESCAPE") {
        detail = false;
        draw();
      } else if (name === "UP" || name === "DOWN") {
        selectedShard = stepShard(shardsOf(view), selectedShard, name === "UP" ? -1 : 1);
        draw();
      } else if (/^[0-9]$/.test(name)) {
        selectedShard = Number(name);
        detail = true;
        draw();
      } else if (name === "ENTER" || name === "KP_ENTER") {
        selectedShard ??= shardsOf(view)[0];
        detail = !detail && selectedShard !== undefined;
        draw();
      } else if (QUIT_KEYS.has(name)) quit(0);
      // Any other key polls now: handy after restarting a node.
      else wake?.();
    },
    onResize: draw,
  });

  // Every way out gives the terminal back; a crash prints after the screen is restored.
  process.on("SIGTERM", () => quit(0));
  process.on("SIGINT", () => quit(0));
  process.on("SIGHUP", () => quit(0));
  process.on("exit", () => screen.close());
  process.on("uncaughtException", (err) => quit(1, `crashed: ${err.stack ?? err.message}`));
  process.on("unhandledRejection", (err) => quit(1, `crashed: ${String((err as Error)?.stack ?? err)}`));

  screen.start();
  draw();
  for (;;) {
    const startedMs = Date.now();
    view = model.observe(await source.poll());
    draw();
    const waitMs = Math.max(0, startedMs + intervalMs - Date.now());
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = undefined;
  }
}
