// The coordinator's flags: one row per flag (see FlagSpec in src/cli/flags.ts).
// A table of data only, so every binary can know every binary's flag names
// (a shared config file) without loading the coordinator.

import type { FlagSpec } from "../cli/flags.ts";
import { LOG_LEVELS } from "../cli/log.ts";
import { DEFAULT_SCHEDULER_OPTIONS } from "../core/scheduler.ts";
import { SHARD_MAX } from "../core/task.ts";
import { DEFAULT_ETCD_PREFIX } from "../net/etcd-keys.ts";
import { NET_LIMIT_FLAGS, SERVER_LIMIT_FLAGS, SERVER_SECURITY_FLAGS } from "../net/net-flags.ts";

const D = DEFAULT_SCHEDULER_OPTIONS;

export const COORDINATOR_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", perBinary: true, type: "int", default: 5000, min: 0, max: 65535, help: "TCP port to listen on (0: any free port, printed at start)" },
  { name: "host", short: "H", perBinary: true, type: "string", default: "127.0.0.1", help: "address to listen on" },
  { name: "shard", type: "int", default: 0, min: 0, max: SHARD_MAX, help: "shard this coordinator serves; task ids encode it" },
  { name: "node-id", perBinary: true, type: "string", default: "", help: "name in logs and stats (default: coordinator-<port>)" },
  { name: "payload-bytes-max", type: "int", default: 1024 * 1024, min: 0, help: "largest task payload accepted; bigger submissions get E_TOO_LARGE" },
  { name: "max-queue", type: "int", default: D.queueMax, min: 1, help: "unfinished tasks held before submissions get E_QUEUE_FULL" },
  { name: "retained-max", type: "int", default: D.retainedMax, min: 0, help: "finished tasks kept for status/result queries (oldest evicted)" },
  { name: "retained-ms", type: "int", default: D.retainedMs, min: 0, help: "how long finished tasks (and their results) are kept after they end" },
  { name: "dlq-max", type: "int", default: D.dlqMax, min: 0, help: "failed tasks kept in the dead-letter queue (oldest evicted)" },
  { name: "aging-ms", type: "int", default: D.agingMs, min: 1, help: "waiting this long counts as one priority level, so low priorities never starve" },
  { name: "lease-ms", type: "int", default: D.leaseMs, min: 50, help: "lease length; worker heartbeats extend it up to the task's timeout" },
  { name: "worker-timeout-ms", type: "int", default: D.workerTimeoutMs, min: 50, help: "a worker silent this long is lost; its tasks are retried" },
  { name: "default-timeout-ms", type: "int", default: D.defaultTimeoutMs, min: 1, help: "task timeout when a submission gives none" },
  { name: "default-max-attempts", type: "int", default: D.defaultMaxAttempts, min: 1, max: 65535, deprecated: ["max-attempts"], help: "attempts when a submission gives none" },
  { name: "worker-slots-max", type: "int", default: 65536, min: 1, help: "largest credit a worker may announce" },
  { name: "tick-ms", type: "int", default: 50, min: 1, max: 10000, help: "interval of lease and liveness checks" },
  ...NET_LIMIT_FLAGS,
  ...SERVER_LIMIT_FLAGS,
  ...SERVER_SECURITY_FLAGS,
  { name: "peer", type: "string", default: "", repeatable: true, help: "another coordinator of this shard, host:port (repeat or comma-separate); none: a single node" },
  { name: "advertise", type: "string", default: "", help: "this node's host:port as its peers name it (default: --host:--port); ranks the start-up election" },
  { name: "etcd", meaning: "etcd endpoints, comma-separated: where the cluster's coordinators are registered (and, for a coordinator, led)", type: "string", default: "", help: "etcd endpoints (host:port or http://host:port, comma-separated): leadership, in-sync replicas and discovery live there instead of --peer election" },
  { name: "etcd-prefix", meaning: "the cluster's key prefix in etcd", type: "string", default: DEFAULT_ETCD_PREFIX, help: "key prefix of this cluster in etcd (several clusters may share one etcd)" },
  { name: "etcd-lease-ttl-ms", type: "int", default: 1000, min: 1000, max: 60000, help: "TTL of this node's etcd lease (rounded to whole seconds; etcd may raise it); a leader stops acting before it can have expired, and failover waits for it" },
  { name: "max-clock-offset-ms", type: "int", default: 500, min: 1, max: 3_600_000, help: "etcd mode: a replica whose wall clock is further than this from the primary's stays out of the in-sync replicas and refuses to lead" },
  { name: "failover-timeout-ms", type: "int", default: 400, min: 10, max: 600000, help: "static --peer mode: a backup with no live primary this long promotes itself (x its rank); etcd mode fails over on the leader lease instead" },
  { name: "backup-timeout-ms", type: "int", default: 1000, min: 0, max: 600000, help: "static mode: how long the primary holds acknowledgements for a lost backup before going on alone; etcd mode: how long an in-sync replica may lag (or be gone) before the primary removes it from the ISR in etcd" },
  { name: "reconnect-min-ms", meaning: "first delay before redialing a lost peer", type: "int", default: 20, min: 1, help: "first delay before redialing a peer" },
  { name: "reconnect-max-ms", meaning: "longest delay between redials of a lost peer", type: "int", default: 500, min: 1, help: "longest delay between redials of a peer" },
  { name: "snapshot-bytes-max", type: "int", default: 1024 * 1024 * 1024, min: 1024 * 1024, help: "largest snapshot sent to or accepted from a peer" },
  { name: "loading-appends-bytes-max", type: "int", default: 256 * 1024 * 1024, min: 1024, help: "a backup loading a snapshot keeps the log entries that arrive meanwhile, up to this many bytes; past it the load starts over with a new snapshot" },
  { name: "metrics-port", perBinary: true, type: "int", default: 0, min: 0, max: 65535, help: "serve Prometheus /metrics and /healthz on this port (0: off)" },
  { name: "metrics-host", perBinary: true, type: "string", default: "127.0.0.1", help: "address the metrics port listens on" },
  { name: "data-dir", type: "string", default: "", help: "keep a write-ahead log and snapshots here (fsync before acknowledging); empty: in memory only, a crash of every replica loses the tasks" },
  { name: "recover-from-peer", type: "bool", default: false, help: "with --data-dir and --peer or --etcd: move this replica's log and snapshot into DIR/set-aside-<time>/ (nothing is deleted) and rebuild it from the primary's snapshot; it leads only once it holds one (etcd: under a new replica id). For a replica whose data start-up refused as damaged; use once, then restart without it" },
  { name: "fsync-interval-ms", type: "int", default: 0, min: 0, max: 60000, help: "with --data-dir. 0: each group commit is fsynced before it is acknowledged, on every replica (survives a power loss of every host at once). N: acknowledged once every in-sync replica has written it, the log fsynced every N ms, as NATS JetStream (sync_interval) and Kafka (flush.ms) do: survives the crash of any one process or host, but a power loss of every replica's host at once (replicas on one machine: that machine) can lose the last N ms; docs/replication.md has what else a power loss does" },
  { name: "wal-bytes-max", type: "int", default: 64 * 1024 * 1024, min: 65536, help: "log size after which a snapshot replaces it (disk use: one snapshot plus this)" },
  { name: "log-level", type: "string", default: "info", choices: LOG_LEVELS, help: "least severe log level printed" },
];
