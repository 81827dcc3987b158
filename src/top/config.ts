// The `top` binary's flags and the config they turn into. One table gives the
// parser and the --help text, like every other binary (src/cli/flags.ts).

import { UsageError, type FlagSpec, type FlagValues } from "../cli/flags.ts";
import { parseHostPortList, type HostPort } from "../net/endpoints.ts";
import { CLIENT_SECURITY_FLAGS, clientSecurity } from "../net/net-flags.ts";
import type { ClientTls } from "../net/tls.ts";

/** Polls of cluster throughput the sparkline keeps: about a minute at the default interval. */
export const HISTORY_POLLS_DEFAULT = 60;

/** Shortest live poll interval: 0 is for --once; live, it would spin on the server. */
export const LIVE_INTERVAL_MS_MIN = 100;

export const TOP_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", perBinary: true, type: "int", default: 6000, min: 1, max: 65535, help: "port of the router (or one coordinator) on --host" },
  { name: "host", short: "H", perBinary: true, type: "string", default: "127.0.0.1", help: "host to connect to" },
  { name: "servers", short: "s", perBinary: true, type: "string", default: "", deprecated: ["server"], help: "comma-separated host:port list; top polls the first and moves to the next when a poll fails; overrides --host and --port" },
  { name: "interval-ms", type: "int", default: 1000, min: 0, max: 3_600_000, help: `time between polls (live: at least ${LIVE_INTERVAL_MS_MIN}); --once with 0 polls once (no throughput)` },
  { name: "poll-timeout-ms", type: "int", deprecated: ["timeout-ms"], default: 2000, min: 10, max: 600_000, help: "bound on connecting and on each stats request; past it the poll counts as failed" },
  { name: "history", type: "int", default: HISTORY_POLLS_DEFAULT, min: 2, max: 10_000, help: "polls of cluster throughput kept for the sparkline" },
  { name: "once", type: "bool", default: false, help: "print one plain-text frame to stdout and exit (two polls --interval-ms apart); exit 1 if unreachable" },
  ...CLIENT_SECURITY_FLAGS,
];

export const TOP_SUMMARY = `live terminal dashboard of the cluster: shards, queues, throughput, latency, workers

Keys: q, Esc or Ctrl-C quit; ? or h shows what the columns mean; Up/Down or a digit selects a shard and Enter
opens its replicas (roles, in sync or ISR, epoch, lag; Esc goes back); any other key polls at once. When the server cannot be reached,
top keeps running, shows the error over the last figures (greyed) and reconnects on the next poll.
Throughput is the difference of the completed counters between two polls, per second.
Exit status: 0 on quit (or --once success), 1 when --once cannot reach the server, 2 on bad flags.`;

export const TOP_EXAMPLES: readonly string[] = [
  "top -p 6000",
  "top -p 5000 --interval-ms 500",
  "top -s 10.0.0.5:6000 --once",
  "top -p 5000 --once --interval-ms 0",
];

export interface TopConfig {
  targets: HostPort[];
  intervalMs: number;
  timeoutMs: number;
  historyMax: number;
  once: boolean;
  token: string | undefined;
  tls: ClientTls | undefined;
}

/** Throws UsageError for a malformed --servers. */
export function topConfig(v: FlagValues): TopConfig {
  let targets: HostPort[];
  try {
    targets = (v.servers as string) !== "" ? parseHostPortList(v.servers as string, v.host as string) : [{ host: v.host as string, port: v.port as number }];
  } catch (err) {
    throw new UsageError(`flag --servers: ${(err as Error).message}`);
  }
  return {
    targets,
    intervalMs: v["interval-ms"] as number,
    timeoutMs: v["poll-timeout-ms"] as number,
    historyMax: v.history as number,
    once: v.once as boolean,
    ...clientSecurity(v),
  };
}
