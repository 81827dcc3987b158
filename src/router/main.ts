// Flags -> RouterConfig -> a running Router, with signal handling.

import { parseOrExit } from "../cli/flag-registry.ts";
import { DEFAULT_SERVERS } from "./flag-table.ts";
import { Logger, type LogLevel } from "../cli/log.ts";
import { stopOnSignals } from "../cli/signals.ts";
import { warnIfOpen } from "../cli/warn-if-open.ts";
import { parseHostPortList } from "../net/endpoints.ts";
import { etcdSettings } from "../net/etcd-discovery.ts";
import { netLimits, serverSecurity } from "../net/net-flags.ts";
import { reloadJwksOnSighup } from "../net/jwt.ts";
import { GrpcApi } from "./grpc/grpc-api.ts";
import { HttpApi } from "./http-api.ts";
import { Router, type RouterConfig } from "./router.ts";


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
    shards: v.shards as number,
  };
}

export function main(): void {
  const values = parseOrExit("router", "one address in front of every shard: routes tasks by shard, fans out stats", [
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
  warnIfOpen(log, config.tokens.open, [
    config.host, ...((values["http-port"] as number) > 0 ? [values["http-host"] as string] : []), ...((values["grpc-port"] as number) > 0 ? [values["grpc-host"] as string] : []),
  ]);
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
  const grpc = (values["grpc-port"] as number) > 0 ? startGrpc(values, config, router.port, log) : undefined;
  reloadJwksOnSighup(config.tokens.jwt, log);
  stopOnSignals(log, () => {
    grpc?.stop();
    http?.stop();
    router.stop();
  });
}

function startGrpc(values: Record<string, number | string | boolean>, config: RouterConfig, routerPort: number, log: Logger): GrpcApi {
  const grpc = new GrpcApi({
    host: values["grpc-host"] as string, port: values["grpc-port"] as number, routerPort, nodeId: config.nodeId,
    messageBytesMax: values["http-body-bytes-max"] as number, batchMax: values["http-batch-max"] as number, idleTimeoutMs: config.limits.clientIdleTimeoutMs,
    tokens: config.tokens, tls: config.tls,
  }, log);
  grpc.start().then(
    () => process.stdout.write(`router grpc on ${values["grpc-host"]}:${grpc.port}\n`),
    (err: Error) => {
      process.stderr.write(`router: gRPC API (--grpc-port): ${err.message}\n`);
      process.exit(1);
    },
  );
  return grpc;
}
