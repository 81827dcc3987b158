// Flags -> TopConfig -> either one plain frame (--once) or the live dashboard.

import { parseOrExit } from "../cli/flag-registry.ts";
import { TOP_EXAMPLES, TOP_SUMMARY, topConfig, type TopConfig } from "./config.ts";
import { runOnce } from "./once.ts";

export async function main(): Promise<void> {
  const values = parseOrExit("top", TOP_SUMMARY, TOP_EXAMPLES);
  let config: TopConfig;
  try {
    config = topConfig(values);
  } catch (err) {
    process.stderr.write(`top: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (config.once) process.exit(await runOnce(config));
  if (!process.stdout.isTTY || !process.stdin.isTTY) {
    process.stderr.write("top: the live dashboard needs a terminal on stdin and stdout; use --once for a plain-text frame\n");
    process.exit(2);
  }
  // Loaded only here: terminal-kit is for the live screen, not for --once or --help.
  const { runDashboard } = await import("./dashboard.ts");
  await runDashboard(config);
}
