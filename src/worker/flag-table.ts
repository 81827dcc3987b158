// The worker's flags: one row per flag (see FlagSpec in src/cli/flags.ts).
// A table of data only, so every binary can know every binary's flag names.

import type { FlagSpec } from "../cli/flags.ts";
import { LOG_LEVELS } from "../cli/log.ts";
import { ETCD_DISCOVERY_FLAGS } from "../net/etcd-discovery.ts";
import { CLIENT_SECURITY_FLAGS, HTTP_LIMIT_FLAGS, JWT_FLAGS, WORKER_NET_LIMIT_FLAGS } from "../net/net-flags.ts";

/** The coordinator's default port: where a worker given no coordinator and no --etcd looks. */
export const DEFAULT_PORT = 5000;

export const WORKER_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", perBinary: true, type: "int", default: 0, min: 0, max: 65535, help: `port of the coordinator on --host (ignored when --servers is given; 0: ${DEFAULT_PORT}, or none with --etcd)` },
  { name: "host", short: "H", perBinary: true, type: "string", default: "127.0.0.1", help: "coordinator host" },
  { name: "servers", short: "s", perBinary: true, type: "string", default: "", deprecated: ["coordinators", "c"], help: "comma-separated host:port list of coordinators to serve (with --etcd too, these are kept whatever etcd says)" },
  ...ETCD_DISCOVERY_FLAGS,
  { name: "threads", short: "w", type: "int", default: 2, min: 1, max: 256, help: "executor threads" },
  { name: "thread-concurrency", type: "int", default: 128, deprecated: ["concurrency"], min: 1, max: 65536, help: "tasks one executor thread holds at once; the worker runs at most threads x thread-concurrency, split among the coordinators it serves by their demand" },
  { name: "handlers", type: "string", default: "", repeatable: true, help: "a module of task handlers (.ts or .js; repeat or comma-separate), loaded on every executor thread" },
  { name: "tags", type: "string", default: "", help: "comma-separated capability tags announced to coordinators" },
  { name: "node-id", perBinary: true, type: "string", default: "", help: "name in logs and stats (default: worker-<pid>)" },
  { name: "heartbeat-ms", type: "int", default: 500, min: 10, max: 60000, help: "interval of heartbeats to each coordinator" },
  { name: "reconnect-min-ms", meaning: "first delay before redialing a lost peer", type: "int", default: 50, min: 1, help: "first delay before redialing a lost coordinator" },
  { name: "reconnect-max-ms", meaning: "longest delay between redials of a lost peer", type: "int", default: 2000, min: 1, help: "longest delay between redials" },
  { name: "ring-bytes", type: "int", default: 4 * 1024 * 1024, min: 4096, max: 1 << 30, help: "size of each executor's task and result rings" },
  { name: "executor-batch-max", type: "int", default: 256, min: 1, deprecated: ["batch-max"], help: "tasks an executor takes per batch before publishing results" },
  { name: "idle-wait-ms", type: "int", default: 1000, min: 1, help: "longest sleep of an idle executor (a notify wakes it sooner)" },
  { name: "results-waiting-max", type: "int", default: 100000, min: 0, help: "results kept per shard while it has no primary (failover); oldest dropped past it" },
  { name: "shutdown-timeout-ms", type: "int", default: 30000, min: 0, help: "on SIGTERM, how long running tasks may take to finish before the worker stops anyway" },
  ...WORKER_NET_LIMIT_FLAGS,
  ...CLIENT_SECURITY_FLAGS,
  { name: "tokens", meaning: "file of `<role> <token>` lines this process checks presented tokens against", type: "string", default: "", help: "tokens file (as the coordinator's): /metrics then needs a token with the read role" },
  ...JWT_FLAGS,
  { name: "metrics-port", perBinary: true, type: "int", default: 0, min: 0, max: 65535, help: "serve Prometheus /metrics and /healthz on this port (0: off)" },
  { name: "metrics-host", perBinary: true, type: "string", default: "127.0.0.1", help: "address the metrics port listens on" },
  ...HTTP_LIMIT_FLAGS,
  { name: "log-level", type: "string", default: "info", choices: LOG_LEVELS, help: "least severe log level printed" },
];
