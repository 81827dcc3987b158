// Flags -> RouterConfig -> a running Router, with signal handling.

import { parseOrExit, type FlagSpec } from "../cli/flags.ts";
import { Logger, LOG_LEVELS, type LogLevel } from "../cli/log.ts";
import { stopOnSignals } from "../cli/signals.ts";
import { warnIfOpen } from "../cli/warn-if-open.ts";
import { parseHostPortList } from "../net/endpoints.ts";
import { ETCD_DISCOVERY_FLAGS, etcdSettings } from "../net/etcd-discovery.ts";
import { NET_LIMIT_FLAGS, netLimits, SERVER_LIMIT_FLAGS, SERVER_SECURITY_FLAGS, serverSecurity } from "../net/net-flags.ts";
import { HttpApi } from "./http-api.ts";
import { Router, type RouterConfig } from "./router.ts";

/** Where a router without -s or --etcd looks: one coordinator on this host, the coordinator's default port. */
const DEFAULT_SERVERS = "127.0.0.1:5000";

export const ROUTER_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", type: "int", default: 6000, min: 0, max: 65535, help: "TCP port for clients (0: any free port, printed at start)" },
  { name: "host", type: "string", default: "127.0.0.1", help: "address to listen on" },
  { name: "servers", short: "s", type: "string", default: "", help: `comma-separated coordinator host:port list, any order, any shards; the shard map is learned from them (default: ${DEFAULT_SERVERS}, or none with --etcd; with both, these are kept whatever etcd says)` },
  ...ETCD_DISCOVERY_FLAGS,
  { name: "node-id", type: "string", default: "", help: "name in logs and stats (default: router-<port>)" },
  { name: "http-port", type: "int", default: 0, min: 0, max: 65535, help: "port of the REST API, task events (SSE: /v1/events), /metrics, /healthz and /readyz (0: no HTTP)" },
  { name: "http-host", type: "string", default: "127.0.0.1", help: "address the HTTP port listens on" },
  { name: "http-body-bytes-max", type: "int", default: 16 * 1024 * 1024, min: 1024, help: "largest HTTP request body" },
  { name: "http-batch-max", type: "int", default: 10000, min: 1, help: "most tasks in one POST /v1/tasks" },
  { name: "reconnect-min-ms", type: "int", default: 50, min: 1, help: "first delay before redialing a lost coordinator" },
  { name: "reconnect-max-ms", type: "int", default: 2000, min: 1, help: "longest delay between redials" },
  { name: "cross-shard-poll-ms", type: "int", default: 100, min: 5, max: 60_000, help: "how often tasks waiting on parents in other shards are checked (a parent's end reaches them within about this)" },
  { name: "stats-timeout-ms", type: "int", default: 1000, min: 1, help: "how long a stats fan-out waits for each coordinator" },
  ...NET_LIMIT_FLAGS,
  ...SERVER_LIMIT_FLAGS,
  ...SERVER_SECURITY_FLAGS,
  { name: "log-level", type: "string", default: "info", choices: LOG_LEVELS, help: "least severe log level printed" },
];

export function routerConfig(v: Record<string, number | string | boolean>): RouterConfig {
  const etcd = etcdSettings(v);
  const servers = (v.servers as string) || (etcd === undefined ? DEFAULT_SERVERS : "");
  return {
    host: v.host as string,
    port: v.port as number,
    nodeId: (v["node-id"] as string) || `router-${v.port}`,
    coordinators: servers === "" ? [] : parseHostPortList(servers),
    etcd,
    limits: netLimits(v),
    ...serverSecurity(v),
    reconnectMinMs: v["reconnect-min-ms"] as number,
    reconnectMaxMs: Math.max(v["reconnect-max-ms"] as number, v["reconnect-min-ms"] as number),
    statsTimeoutMs: v["stats-timeout-ms"] as number,
    crossShardPollMs: v["cross-shard-poll-ms"] as number,
  };
}

export function main(): void {
  const values = parseOrExit("router", "one address in front of every shard: routes tasks by shard, fans out stats", ROUTER_FLAGS, [
    "router -p 6000 -s 127.0.0.1:5000,127.0.0.1:5001",
    "router -p 6000 --etcd 127.0.0.1:2379",
  ]);
  let config: RouterConfig;
  try {
    config = routerConfig(values);
  } catch (err) {
    process.stderr.write(`router: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = new Logger("router", values["log-level"] as LogLevel);
  warnIfOpen(log, config.tokens.open, [config.host, ...((values["http-port"] as number) > 0 ? [values["http-host"] as string] : [])]);
  const router = new Router(config, log);
  try {
    router.start();
  } catch (err) {
    process.stderr.write(`router: ${(err as Error).message}\n`);
    process.exit(1);
  }
  process.stdout.write(`router listening on ${config.host}:${router.port}\n`);
  let http: HttpApi | undefined;
  if ((values["http-port"] as number) > 0) {
    http = new HttpApi({
      host: values["http-host"] as string, port: values["http-port"] as number, routerPort: router.port, nodeId: config.nodeId,
      bodyBytesMax: values["http-body-bytes-max"] as number, batchMax: values["http-batch-max"] as number,
      tokens: config.tokens, tls: config.tls, limits: config.limits,
    }, log);
    try {
      http.start();
    } catch (err) {
      process.stderr.write(`router: HTTP API (--http-port): ${(err as Error).message}\n`);
      process.exit(1);
    }
    process.stdout.write(`router http on ${values["http-host"]}:${http.port}\n`);
  }
  stopOnSignals(log, () => {
    http?.stop();
    router.stop();
  });
}
