// Flags -> WorkerConfig -> a running WorkerNode, with signal handling.

import { parseOrExit } from "../cli/flag-registry.ts";
import { DEFAULT_PORT } from "./flag-table.ts";
import { Logger, type LogLevel } from "../cli/log.ts";
import { stopOnSignals } from "../cli/signals.ts";
import { warnIfOpen } from "../cli/warn-if-open.ts";
import { TokenTable } from "../net/auth.ts";
import { parseHostPortList } from "../net/endpoints.ts";
import { etcdSettings } from "../net/etcd-discovery.ts";
import { reloadJwksOnSighup } from "../net/jwt.ts";
import { clientSecurity, jwtVerifier, netLimits } from "../net/net-flags.ts";
import { resolve } from "node:path";
import { workerMetrics } from "../metrics/prometheus.ts";
import { serveMetrics } from "../metrics/metrics-server.ts";
import { WorkerNode, type WorkerConfig } from "./worker.ts";


export function workerConfig(v: Record<string, number | string | boolean>, executorModule: string | URL): WorkerConfig {
  const etcd = etcdSettings(v);
  const port = (v.port as number) || (etcd === undefined ? DEFAULT_PORT : 0);
  const list = (v.servers as string) || (port > 0 ? `${v.host}:${port}` : "");
  return {
    coordinators: list === "" ? [] : parseHostPortList(list, v.host as string),
    etcd,
    nodeId: (v["node-id"] as string) || `worker-${process.pid}`,
    tags: (v.tags as string).split(",").map((t) => t.trim()).filter((t) => t !== ""),
    threads: v.threads as number,
    concurrency: v["thread-concurrency"] as number,
    ringBytes: v["ring-bytes"] as number,
    heartbeatMs: v["heartbeat-ms"] as number,
    reconnectMinMs: v["reconnect-min-ms"] as number,
    reconnectMaxMs: Math.max(v["reconnect-max-ms"] as number, v["reconnect-min-ms"] as number),
    idleWaitMs: v["idle-wait-ms"] as number,
    batchMax: v["executor-batch-max"] as number,
    resultsWaitingMax: v["results-waiting-max"] as number,
    handlerModules: (v.handlers as string).split(",").map((p) => p.trim()).filter((p) => p !== "").map((p) => resolve(p)),
    limits: netLimits(v),
    ...clientSecurity(v),
    executorModule,
  };
}

export async function main(executorModule: string | URL): Promise<void> {
  const values = parseOrExit("worker", "runs tasks leased by coordinators on executor threads", [
    "worker -p 5000 -w 4",
    "worker -p 5000 --handlers ./examples/handlers.ts",
    "worker -s 127.0.0.1:5000,127.0.0.1:5100 -w 2 --tags gpu,eu",
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
    metricsTokens = TokenTable.load(values.tokens as string).withJwt(jwtVerifier(values));
  } catch (err) {
    process.stderr.write(`worker: ${(err as Error).message}\n`);
    process.exit(2);
  }
  if ((values["metrics-port"] as number) > 0) warnIfOpen(log, metricsTokens.open, [values["metrics-host"] as string]);
  reloadJwksOnSighup(metricsTokens.jwt, log);
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
