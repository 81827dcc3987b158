// Flags -> CoordinatorConfig -> a running Coordinator, with signal handling.

import { parseOrExit } from "../cli/flag-registry.ts";
import { Logger, type LogLevel } from "../cli/log.ts";
import { warnIfOpen } from "../cli/warn-if-open.ts";
import { stopOnSignals } from "../cli/signals.ts";
import { exitOnUncaughtErrors } from "../cli/fatal.ts";
import { formatHostPort, parseHostPortList } from "../net/endpoints.ts";
import { isLoopback } from "../net/auth.ts";
import { reloadJwksOnSighup } from "../net/jwt.ts";
import { netLimits, serverSecurity } from "../net/net-flags.ts";
import { clusterMetrics } from "../metrics/prometheus.ts";
import { serveMetrics } from "../metrics/metrics-server.ts";
import { Coordinator, type CoordinatorConfig } from "./coordinator.ts";
import { replicaIdFor } from "./replica-id.ts";
import { StorageError } from "./storage-error.ts";
import { etcdSettings } from "../net/etcd-discovery.ts";


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
    fsyncIntervalMs: v["fsync-interval-ms"] as number,
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
      defaultMaxAttempts: v["default-max-attempts"] as number,
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
  const values = parseOrExit("coordinator", "schedules tasks of one shard and leases them to workers", [
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
  reloadJwksOnSighup(config.tokens.jwt, log);
  stopOnSignals(log, () => coordinator.shutdown());
}
