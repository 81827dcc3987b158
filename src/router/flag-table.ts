// The router's flags: one row per flag (see FlagSpec in src/cli/flags.ts).
// A table of data only, so every binary can know every binary's flag names.

import type { FlagSpec } from "../cli/flags.ts";
import { LOG_LEVELS } from "../cli/log.ts";
import { ETCD_DISCOVERY_FLAGS } from "../net/etcd-discovery.ts";
import { NET_LIMIT_FLAGS, SERVER_LIMIT_FLAGS, SERVER_SECURITY_FLAGS } from "../net/net-flags.ts";

/** Where a router without -s or --etcd looks: one coordinator on this host, the coordinator's default port. */
export const DEFAULT_SERVERS = "127.0.0.1:5000";

export const ROUTER_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", perBinary: true, type: "int", default: 6000, min: 0, max: 65535, help: "TCP port for clients (0: any free port, printed at start)" },
  { name: "host", short: "H", perBinary: true, type: "string", default: "127.0.0.1", help: "address to listen on" },
  { name: "servers", short: "s", perBinary: true, type: "string", default: "", help: `comma-separated coordinator host:port list, any order, any shards; the shard map is learned from them (default: ${DEFAULT_SERVERS}, or none with --etcd; with both, these are kept whatever etcd says)` },
  ...ETCD_DISCOVERY_FLAGS,
  { name: "shards", type: "int", default: 0, min: 0, max: 65536, help: "the cluster's number of shards (coordinators' --shard 0..N-1): a task (or workflow) with an idempotency key and no parent always goes to the shard its key hashes to among N, refused as retryable while that shard is unreachable. Give the same N to every router. 0: hash over the shards heard from so far, where a key can move to another shard while shards come and go (a retry then makes a second task)" },
  { name: "node-id", perBinary: true, type: "string", default: "", help: "name in logs and stats (default: router-<port>)" },
  { name: "http-port", type: "int", default: 0, min: 0, max: 65535, help: "port of the REST API, the web dashboard (/ui), task events (SSE: /v1/events), /metrics, /healthz and /readyz (0: no HTTP)" },
  { name: "http-host", type: "string", default: "127.0.0.1", help: "address the HTTP port listens on" },
  { name: "http-body-bytes-max", type: "int", default: 16 * 1024 * 1024, min: 1024, help: "largest HTTP request body" },
  { name: "http-batch-max", type: "int", default: 10000, min: 1, help: "most tasks in one POST /v1/tasks (and gRPC SubmitBatch, SubmitWorkflow, Watch)" },
  { name: "grpc-port", type: "int", default: 0, min: 0, max: 65535, help: "port of the gRPC API (proto/task_scheduler.proto; TLS, tokens and limits as the HTTP port; at most 1,000 calls in flight per connection) (0: no gRPC)" },
  { name: "grpc-host", type: "string", default: "127.0.0.1", help: "address the gRPC port listens on" },
  { name: "reconnect-min-ms", meaning: "first delay before redialing a lost peer", type: "int", default: 50, min: 1, help: "first delay before redialing a lost coordinator" },
  { name: "reconnect-max-ms", meaning: "longest delay between redials of a lost peer", type: "int", default: 2000, min: 1, help: "longest delay between redials" },
  { name: "cross-shard-poll-ms", type: "int", default: 100, min: 5, max: 60_000, help: "how often tasks waiting on parents in other shards are checked (a parent's end reaches them within about this)" },
  { name: "stats-timeout-ms", type: "int", default: 1000, min: 1, help: "how long a stats fan-out, a lookup by idempotency key or another request of the router's own waits for each coordinator" },
  ...NET_LIMIT_FLAGS,
  ...SERVER_LIMIT_FLAGS,
  ...SERVER_SECURITY_FLAGS,
  { name: "log-level", type: "string", default: "info", choices: LOG_LEVELS, help: "least severe log level printed" },
];
