// Flags -> CoordinatorConfig -> a running Coordinator, with signal handling.

import { parseOrExit, type FlagSpec } from "../cli/flags.ts";
import { Logger, LOG_LEVELS, type LogLevel } from "../cli/log.ts";
import { warnIfOpen } from "../cli/warn-if-open.ts";
import { stopOnSignals } from "../cli/signals.ts";
import { exitOnUncaughtErrors } from "../cli/fatal.ts";
import { DEFAULT_SCHEDULER_OPTIONS } from "../core/scheduler.ts";
import { SHARD_MAX } from "../core/task.ts";
import { formatHostPort, parseHostPortList } from "../net/endpoints.ts";
import { isLoopback } from "../net/auth.ts";
import { NET_LIMIT_FLAGS, netLimits, SERVER_LIMIT_FLAGS, SERVER_SECURITY_FLAGS, serverSecurity } from "../net/net-flags.ts";
import { clusterMetrics } from "../metrics/prometheus.ts";
import { serveMetrics } from "../metrics/metrics-server.ts";
import { Coordinator, type CoordinatorConfig } from "./coordinator.ts";
import { replicaIdFor } from "./replica-id.ts";
import { StorageError } from "./storage-error.ts";
import { DEFAULT_ETCD_PREFIX } from "../net/etcd-keys.ts";
import { etcdSettings } from "../net/etcd-discovery.ts";

const D = DEFAULT_SCHEDULER_OPTIONS;

export const COORDINATOR_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", type: "int", default: 5000, min: 0, max: 65535, help: "TCP port to listen on (0: any free port, printed at start)" },
  { name: "host", type: "string", default: "127.0.0.1", help: "address to listen on" },
  { name: "shard", type: "int", default: 0, min: 0, max: SHARD_MAX, help: "shard this coordinator serves; task ids encode it" },
  { name: "node-id", type: "string", default: "", help: "name in logs and stats (default: coordinator-<port>)" },
  { name: "payload-bytes-max", type: "int", default: 1024 * 1024, min: 0, help: "largest task payload accepted; bigger submissions get E_TOO_LARGE" },
  { name: "max-queue", type: "int", default: D.queueMax, min: 1, help: "unfinished tasks held before submissions get E_QUEUE_FULL" },
  { name: "retained-max", type: "int", default: D.retainedMax, min: 0, help: "finished tasks kept for status/result queries (oldest evicted)" },
  { name: "retained-ms", type: "int", default: D.retainedMs, min: 0, help: "how long finished tasks (and their results) are kept after they end" },
  { name: "dlq-max", type: "int", default: D.dlqMax, min: 0, help: "failed tasks kept in the dead-letter queue (oldest evicted)" },
  { name: "aging-ms", type: "int", default: D.agingMs, min: 1, help: "waiting this long counts as one priority level, so low priorities never starve" },
  { name: "lease-ms", type: "int", default: D.leaseMs, min: 50, help: "lease length; worker heartbeats extend it up to the task's timeout" },
  { name: "worker-timeout-ms", type: "int", default: D.workerTimeoutMs, min: 50, help: "a worker silent this long is lost; its tasks are retried" },
  { name: "default-timeout-ms", type: "int", default: D.defaultTimeoutMs, min: 1, help: "task timeout when a submission gives none" },
  { name: "max-attempts", type: "int", default: D.defaultMaxAttempts, min: 1, max: 65535, help: "attempts when a submission gives none" },
  { name: "worker-slots-max", type: "int", default: 65536, min: 1, help: "largest credit a worker may announce" },
  { name: "tick-ms", type: "int", default: 50, min: 1, max: 10000, help: "interval of lease and liveness checks" },
  ...NET_LIMIT_FLAGS,
  ...SERVER_LIMIT_FLAGS,
  ...SERVER_SECURITY_FLAGS,
  { name: "peer", type: "string", default: "", repeatable: true, help: "another coordinator of this shard, host:port (repeat or comma-separate); none: a single node" },
  { name: "advertise", type: "string", default: "", help: "this node's host:port as its peers name it (default: --host:--port); ranks the start-up election" },
  { name: "etcd", type: "string", default: "", help: "etcd endpoints (host:port or http://host:port, comma-separated): leadership, in-sync replicas and discovery live there instead of --peer election" },
  { name: "etcd-prefix", type: "string", default: DEFAULT_ETCD_PREFIX, help: "key prefix of this cluster in etcd (several clusters may share one etcd)" },
  { name: "etcd-lease-ttl-ms", type: "int", default: 1000, min: 1000, max: 60000, help: "TTL of this node's etcd lease (rounded to whole seconds; etcd may raise it); a leader stops acting before it can have expired, and failover waits for it" },
  { name: "max-clock-offset-ms", type: "int", default: 500, min: 1, max: 3_600_000, help: "etcd mode: a replica whose wall clock is further than this from the primary's stays out of the in-sync replicas and refuses to lead" },
  { name: "failover-timeout-ms", type: "int", default: 400, min: 10, max: 600000, help: "static --peer mode: a backup with no live primary this long promotes itself (x its rank); etcd mode fails over on the leader lease instead" },
  { name: "backup-timeout-ms", type: "int", default: 1000, min: 0, max: 600000, help: "static mode: how long the primary holds acknowledgements for a lost backup before going on alone; etcd mode: how long an in-sync replica may lag (or be gone) before the primary removes it from the ISR in etcd" },
  { name: "reconnect-min-ms", type: "int", default: 20, min: 1, help: "first delay before redialing a peer" },
  { name: "reconnect-max-ms", type: "int", default: 500, min: 1, help: "longest delay between redials of a peer" },
  { name: "snapshot-bytes-max", type: "int", default: 1024 * 1024 * 1024, min: 1024 * 1024, help: "largest snapshot sent to or accepted from a peer" },
  { name: "loading-appends-bytes-max", type: "int", default: 256 * 1024 * 1024, min: 1024, help: "a backup loading a snapshot keeps the log entries that arrive meanwhile, up to this many bytes; past it the load starts over with a new snapshot" },
  { name: "metrics-port", type: "int", default: 0, min: 0, max: 65535, help: "serve Prometheus /metrics and /healthz on this port (0: off)" },
  { name: "metrics-host", type: "string", default: "127.0.0.1", help: "address the metrics port listens on" },
  { name: "data-dir", type: "string", default: "", help: "keep a write-ahead log and snapshots here (fsync before acknowledging); empty: in memory only, a crash of every replica loses the tasks" },
  { name: "recover-from-peer", type: "bool", default: false, help: "with --data-dir and --peer or --etcd: move this replica's log and snapshot into DIR/set-aside-<time>/ (nothing is deleted) and rebuild it from the primary's snapshot; it leads only once it holds one (etcd: under a new replica id). For a replica whose data start-up refused as damaged; use once, then restart without it" },
  { name: "wal-bytes-max", type: "int", default: 64 * 1024 * 1024, min: 65536, help: "log size after which a snapshot replaces it (disk use: one snapshot plus this)" },
  { name: "log-level", type: "string", default: "info", choices: LOG_LEVELS, help: "least severe log level printed" },
];

/** A peer named twice, or this node itself, would count as another replica in every election. */
function checkPeers(peers: string[], advertise: string): void {
  const seen = new Set<string>();
  for (const peer of peers) {
    if (peer === advertise) throw new Error(`--peer ${peer} is this node's own address (--advertise, or --host:--port): name only the other replicas`);
    if (seen.has(peer)) throw new Error(`--peer names ${peer} twice`);
    seen.add(peer);
  }
}

export function coordinatorConfig(v: Record<string, number | string | boolean>): CoordinatorConfig {
  const peers = (v.peer as string) === "" ? [] : parseHostPortList(v.peer as string);
  // The same parsing as router and worker (trailing '/' dropped, leading '/' required), so all agree on the keys.
  const etcd = etcdSettings(v);
  if (etcd !== undefined && peers.length > 0) throw new Error("--etcd and --peer exclude each other: with etcd, replicas find each other there");
  // -p 0 would name every such node "coordinator-0": the process id tells them apart.
  const nodeId = (v["node-id"] as string) || `coordinator-${(v.port as number) === 0 ? `pid${process.pid}` : v.port}`;
  const advertise = (v.advertise as string) || formatHostPort(v.host as string, v.port as number);
  checkPeers(peers.map((p) => formatHostPort(p.host, p.port)), advertise);
  return {
    ...(etcd !== undefined && {
      etcd: {
        endpoints: etcd.endpoints, prefix: etcd.prefix, leaseTtlMs: v["etcd-lease-ttl-ms"] as number,
        replicaId: replicaIdFor(nodeId, v["data-dir"] as string),
      },
    }),
    peers,
    advertise,
    failoverTimeoutMs: v["failover-timeout-ms"] as number,
    maxClockOffsetMs: v["max-clock-offset-ms"] as number,
    backupTimeoutMs: v["backup-timeout-ms"] as number,
    reconnectMinMs: v["reconnect-min-ms"] as number,
    reconnectMaxMs: Math.max(v["reconnect-max-ms"] as number, v["reconnect-min-ms"] as number),
    snapshotBytesMax: v["snapshot-bytes-max"] as number,
    loadingAppendsBytesMax: v["loading-appends-bytes-max"] as number,
    dataDir: v["data-dir"] as string,
    walBytesMax: v["wal-bytes-max"] as number,
    recoverFromPeer: recoverFromPeer(v, peers.length > 0 || etcd !== undefined),
    host: v.host as string,
    port: v.port as number,
    nodeId,
    tickMs: v["tick-ms"] as number,
    payloadBytesMax: v["payload-bytes-max"] as number,
    workerSlotsMax: v["worker-slots-max"] as number,
    limits: netLimits(v),
    ...serverSecurity(v),
    scheduler: {
      shard: v.shard as number,
      queueMax: v["max-queue"] as number,
      retainedMax: v["retained-max"] as number,
      retainedMs: v["retained-ms"] as number,
      dlqMax: v["dlq-max"] as number,
      agingMs: v["aging-ms"] as number,
      leaseMs: v["lease-ms"] as number,
      workerTimeoutMs: v["worker-timeout-ms"] as number,
      defaultTimeoutMs: v["default-timeout-ms"] as number,
      defaultMaxAttempts: v["max-attempts"] as number,
    },
  };
}

/** --recover-from-peer rebuilds a data directory from another replica: it needs both. */
function recoverFromPeer(v: Record<string, number | string | boolean>, hasPeers: boolean): boolean {
  if (v["recover-from-peer"] !== true) return false;
  if (v["data-dir"] === "") throw new Error("--recover-from-peer rebuilds a --data-dir: give the data directory to set aside");
  if (!hasPeers) throw new Error("--recover-from-peer needs --peer or --etcd: a single node has no replica to rebuild from");
  return true;
}

export function main(): void {
  exitOnUncaughtErrors();
  const values = parseOrExit("coordinator", "schedules tasks of one shard and leases them to workers", COORDINATOR_FLAGS, [
    "coordinator -p 5000",
    "coordinator -p 5000 --shard 1 --max-queue 100000",
    "coordinator -p 5000 --peer 127.0.0.1:5001   # with: coordinator -p 5001 --peer 127.0.0.1:5000",
    "coordinator -p 5000 --etcd 127.0.0.1:2379 --data-dir /var/lib/ts/0   # a replica group: start more with other ports",
    "coordinator -p 5001 --peer 127.0.0.1:5000 --data-dir /var/lib/ts/1 --recover-from-peer   # its log was refused as damaged: rebuild it from the primary",
  ]);
  let config: CoordinatorConfig;
  try {
    config = coordinatorConfig(values);
  } catch (err) {
    process.stderr.write(`coordinator: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if (config.peers.length > 0 && config.port === 0 && !values.advertise) {
    process.stderr.write("coordinator: with --peer, give a fixed -p or --advertise so peers agree on this node's address\n");
    process.exit(2);
  }
  const log = new Logger("coordinator", values["log-level"] as LogLevel);
  warnIfOpen(log, config.tokens.open, [config.host, values["metrics-port"] ? (values["metrics-host"] as string) : "127.0.0.1"]);
  // Static peers elect on timeouts: fine on one host, unsafe where a network between replicas can split (docs/replication.md).
  if (config.peers.length > 0 && !isLoopback(config.host)) log.warn("static --peer mode is not partition-safe: during a network partition two primaries can acknowledge, and when it heals the lower epoch steps down and loses what it acknowledged; use --etcd for replica groups across machines", { host: config.host, peers: config.peers.length });
  const coordinator = new Coordinator(config, log);
  try {
    coordinator.start();
  } catch (err) {
    // A damaged data directory says which file, where, and what to do (storage-error.ts).
    const storage = err instanceof StorageError ? { file: err.file, offset: err.offset, problem: err.problem } : {};
    log.error("cannot start", { host: config.host, port: config.port, error: (err as Error).message, ...storage });
    process.exit(1);
  }
  // A line a script can wait for, with the real port when -p 0 was given.
  process.stdout.write(`coordinator listening on ${config.host}:${coordinator.port}\n`);
  if ((values["metrics-port"] as number) > 0) {
    const address = `${config.host}:${coordinator.port}`;
    try {
      serveMetrics(values["metrics-host"] as string, values["metrics-port"] as number, () => {
        const stats = coordinator.stats(0);
        return clusterMetrics({ requestId: 0, router: { nodeId: "", uptimeMs: 0, clients: 0, forwarded: 0, retried: 0 }, coordinators: [{ address, reachable: true, stats }] }, undefined);
      }, log, { tokens: config.tokens, tls: config.tls.server, limits: config.limits, ready: () => coordinator.readiness(), processLabels: { process: "coordinator", node: config.nodeId } });
    } catch (err) {
      log.error("cannot start", { metricsPort: values["metrics-port"], error: (err as Error).message });
      coordinator.stop();
      process.exit(1);
    }
  }
  // SIGTERM hands over to a backup first (see Coordinator.shutdown).
  stopOnSignals(log, () => coordinator.shutdown());
}
