// Flags -> WorkerConfig -> a running WorkerNode, with signal handling.

import { parseOrExit, type FlagSpec } from "../cli/flags.ts";
import { Logger, LOG_LEVELS, type LogLevel } from "../cli/log.ts";
import { stopOnSignals } from "../cli/signals.ts";
import { warnIfOpen } from "../cli/warn-if-open.ts";
import { TokenTable } from "../net/auth.ts";
import { parseHostPortList } from "../net/endpoints.ts";
import { ETCD_DISCOVERY_FLAGS, etcdSettings } from "../net/etcd-discovery.ts";
import { BATCH_MAX_FLAG, CLIENT_SECURITY_FLAGS, clientSecurity, HTTP_LIMIT_FLAGS, NET_LIMIT_FLAGS, netLimits } from "../net/net-flags.ts";
import { resolve } from "node:path";
import { workerMetrics } from "../metrics/prometheus.ts";
import { serveMetrics } from "../metrics/metrics-server.ts";
import { WorkerNode, type WorkerConfig } from "./worker.ts";

/** The coordinator's default port: where a worker given no coordinator and no --etcd looks. */
const DEFAULT_PORT = 5000;

export const WORKER_FLAGS: readonly FlagSpec[] = [
  { name: "port", short: "p", type: "int", default: 0, min: 0, max: 65535, help: `port of the coordinator on --host (ignored when --coordinators is given; 0: ${DEFAULT_PORT}, or none with --etcd)` },
  { name: "host", short: "H", type: "string", default: "127.0.0.1", help: "coordinator host" },
  { name: "coordinators", short: "c", type: "string", default: "", help: "comma-separated host:port list of coordinators to serve (with --etcd too, these are kept whatever etcd says)" },
  ...ETCD_DISCOVERY_FLAGS,
  { name: "threads", short: "w", type: "int", default: 2, min: 1, max: 256, help: "executor threads" },
  { name: "concurrency", type: "int", default: 128, min: 1, max: 65536, help: "tasks one executor thread holds at once; the worker runs at most threads x concurrency, split among the coordinators it serves by their demand" },
  { name: "handlers", type: "string", default: "", repeatable: true, help: "a module of task handlers (.ts or .js; repeat or comma-separate), loaded on every executor thread" },
  { name: "tags", type: "string", default: "", help: "comma-separated capability tags announced to coordinators" },
  { name: "node-id", type: "string", default: "", help: "name in logs and stats (default: worker-<pid>)" },
  { name: "heartbeat-ms", type: "int", default: 500, min: 10, max: 60000, help: "interval of heartbeats to each coordinator" },
  { name: "reconnect-min-ms", type: "int", default: 50, min: 1, help: "first delay before redialing a lost coordinator" },
  { name: "reconnect-max-ms", type: "int", default: 2000, min: 1, help: "longest delay between redials" },
  { name: "ring-bytes", type: "int", default: 4 * 1024 * 1024, min: 4096, max: 1 << 30, help: "size of each executor's task and result rings" },
  { name: "batch-max", type: "int", default: 256, min: 1, help: "tasks an executor takes per batch before publishing results" },
  { name: "idle-wait-ms", type: "int", default: 1000, min: 1, help: "longest sleep of an idle executor (a notify wakes it sooner)" },
  { name: "results-waiting-max", type: "int", default: 100000, min: 0, help: "results kept per shard while it has no primary (failover); oldest dropped past it" },
  { name: "shutdown-timeout-ms", type: "int", default: 30000, min: 0, help: "on SIGTERM, how long running tasks may take to finish before the worker stops anyway" },
  ...NET_LIMIT_FLAGS.filter((f) => f.name !== "batch-max"),
  // The worker's --batch-max is its executors' batch; this is the network one.
  { ...BATCH_MAX_FLAG, name: "frame-batch-max" },
  ...CLIENT_SECURITY_FLAGS,
  { name: "tokens", type: "string", default: "", help: "tokens file (as the coordinator's): /metrics then needs a token with the read role" },
  { name: "metrics-port", type: "int", default: 0, min: 0, max: 65535, help: "serve Prometheus /metrics and /healthz on this port (0: off)" },
  { name: "metrics-host", type: "string", default: "127.0.0.1", help: "address the metrics port listens on" },
  ...HTTP_LIMIT_FLAGS,
  { name: "log-level", type: "string", default: "info", choices: LOG_LEVELS, help: "least severe log level printed" },
];

export function workerConfig(v: Record<string, number | string | boolean>, executorModule: string | URL): WorkerConfig {
  const etcd = etcdSettings(v);
  const port = (v.port as number) || (etcd === undefined ? DEFAULT_PORT : 0);
  const list = (v.coordinators as string) || (port > 0 ? `${v.host}:${port}` : "");
  return {
    coordinators: list === "" ? [] : parseHostPortList(list, v.host as string),
    etcd,
    nodeId: (v["node-id"] as string) || `worker-${process.pid}`,
    tags: (v.tags as string).split(",").map((t) => t.trim()).filter((t) => t !== ""),
    threads: v.threads as number,
    concurrency: v.concurrency as number,
    ringBytes: v["ring-bytes"] as number,
    heartbeatMs: v["heartbeat-ms"] as number,
    reconnectMinMs: v["reconnect-min-ms"] as number,
    reconnectMaxMs: Math.max(v["reconnect-max-ms"] as number, v["reconnect-min-ms"] as number),
    idleWaitMs: v["idle-wait-ms"] as number,
    batchMax: v["batch-max"] as number,
    resultsWaitingMax: v["results-waiting-max"] as number,
    handlerModules: (v.handlers as string).split(",").map((p) => p.trim()).filter((p) => p !== "").map((p) => resolve(p)),
    limits: netLimits({ ...v, "batch-max": v["frame-batch-max"] as number }),
    ...clientSecurity(v),
    executorModule,
  };
}

export async function main(executorModule: string | URL): Promise<void> {
  const values = parseOrExit("worker", "runs tasks leased by coordinators on executor threads", WORKER_FLAGS, [
    "worker -p 5000 -w 4",
    "worker -p 5000 --handlers ./examples/handlers.ts",
    "worker --coordinators 127.0.0.1:5000,127.0.0.1:5100 -w 2 --tags gpu,eu",
    "worker --etcd 127.0.0.1:2379 -w 4",
  ]);
  let config: WorkerConfig;
  try {
    config = workerConfig(values, executorModule);
  } catch (err) {
    process.stderr.write(`worker: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = new Logger("worker", values["log-level"] as LogLevel);
  let metricsTokens: TokenTable;
  try {
    metricsTokens = TokenTable.load(values.tokens as string);
  } catch (err) {
    process.stderr.write(`worker: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if ((values["metrics-port"] as number) > 0) warnIfOpen(log, metricsTokens.open, [values["metrics-host"] as string]);
  const node = new WorkerNode(config, log, (err) => {
    process.stderr.write(`worker: ${err.message}\n`);
    process.exit(1);
  });
  try {
    await node.start();
  } catch (err) {
    process.stderr.write(`worker: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if ((values["metrics-port"] as number) > 0) {
    try {
      serveMetrics(values["metrics-host"] as string, values["metrics-port"] as number, () => workerMetrics(config.nodeId, node.counters, node.running, node.slots), log, {
        tokens: metricsTokens, limits: config.limits, processLabels: { process: "worker", node: config.nodeId },
        ready: () => {
          const links = node.linksUp;
          return { ready: links.up > 0, reason: links.up > 0 ? "a coordinator link is up" : "no coordinator link is up", linksUp: links.up, links: links.total };
        },
      });
    } catch (err) {
      process.stderr.write(`worker: metrics (--metrics-port): ${(err as Error).message}\n`);
      process.exit(1);
    }
  }
  const served = [
    ...(config.coordinators.length > 0 ? [`coordinators ${config.coordinators.map((c) => `${c.host}:${c.port}`).join(",")}`] : []),
    ...(config.etcd !== undefined ? [`those in etcd ${config.etcd.endpoints.join(",")} under ${config.etcd.prefix}`] : []),
  ];
  process.stdout.write(`worker ${config.nodeId} started: ${config.threads} threads x ${config.concurrency} slots, ${served.join(" and ")}\n`);
  // SIGTERM drains: no new work, running tasks finish (see WorkerNode.drain).
  stopOnSignals(log, async () => void (await node.drain(values["shutdown-timeout-ms"] as number)), () => ({ runningTasks: node.running }));
}
