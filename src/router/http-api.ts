// The router's HTTP port: a JSON REST API, health checks and Prometheus
// metrics. Requests go through an SDK client connected to the router's own TCP
// port (loopback-client.ts), as the gRPC API's do.

import type { Logger } from "../cli/log.ts";
import { PROCESS_SAMPLER, processMetrics } from "../metrics/process-metrics.ts";
import { clusterMetrics } from "../metrics/prometheus.ts";
import { matchRoute, routeMissResponse, type Route } from "../net/http-routes.ts";
import { authorizeHttp, httpGrants, PERMISSIONS, type Permission, type TokenTable } from "../net/auth.ts";
import { serveHttp, type HttpLimits, type HttpServer } from "../net/http-front.ts";
import type { TlsSettings } from "../net/tls.ts";
import { publicView } from "../protocol/public-view.ts";
import { BatchSubmitError, SchedulerClient, TaskError } from "../sdk/client.ts";
import { LoopbackClient } from "./loopback-client.ts";
import { batchOutcomes, HttpError, jsonResult, showTask, submitTasks, taskId } from "./task-request.ts";
import { DASHBOARD_ROUTES, isDashboardPath } from "./dashboard/routes.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { EventCursor, type TaskEvent } from "../protocol/events.ts";
import { SUBSCRIPTIONS_PER_CLIENT_MAX } from "./event-relay.ts";
import { eventStream, filterFromQuery, SSE_KEEPALIVE_MS } from "./event-stream.ts";

export interface HttpApiConfig {
  host: string;
  port: number;
  /** The router's own TCP port. */
  routerPort: number;
  nodeId: string;
  /** Largest request body accepted. */
  bodyBytesMax: number;
  /** Most tasks in one POST /v1/tasks. */
  batchMax: number;
  /** Bearer tokens checked per route; the cluster token is what the API presents to the router's own port. */
  tokens: TokenTable;
  tls: TlsSettings;
  /** Connections and time-outs, the same as on the router's TCP port. */
  limits: HttpLimits;
}

/** The role a route needs: probes need none, reads need read, changes submit, DLQ requeue and purge admin. */
function permissionFor(method: string, parts: string[]): Permission | undefined {
  const [a, b, , d] = parts;
  // The dashboard's files hold no data: the page asks the API with the user's token.
  if (a === "healthz" || a === "readyz" || isDashboardPath(parts)) return undefined;
  if (method === "GET") return "read";
  // Requeue and purge change what the dead-letter queue holds: the same admin role as on the TCP port.
  if (b === "dlq" && (d === "requeue" || method === "DELETE")) return "admin";
  return "submit";
}

const STATUS_OF: Record<string, number> = {
  E_BAD_REQUEST: 400, E_CYCLE: 400, E_TOO_LARGE: 413, E_UNAUTHORIZED: 401, E_UNKNOWN_TASK: 404, E_UNKNOWN_SHARD: 404,
  E_QUEUE_FULL: 429, E_UNAVAILABLE: 503, E_NOT_PRIMARY: 503, E_SHUTTING_DOWN: 503,
};

const json = (status: number, body: unknown) => Response.json(body, { status });

interface RouteContext {
  api: HttpApi;
  req: Request;
  url: URL;
}

const sdk = (ctx: RouteContext) => ctx.api.sdkClient();

/** Every route of the port; a known path with another method gets 405 and Allow, an unknown one 404. */
const API_ROUTES: readonly Route<RouteContext>[] = [
  ["/healthz", { GET: () => json(200, { status: "ok" }) }],
  ["/readyz", { GET: (_p, ctx) => ctx.api.readyz() }],
  ["/metrics", {
    GET: async (_p, ctx) => {
      const stats = await (await sdk(ctx)).clusterStats();
      const text = clusterMetrics(stats, { router: ctx.api.nodeId }) + processMetrics(PROCESS_SAMPLER.sample(), { process: "router", node: ctx.api.nodeId });
      return new Response(text, { headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" } });
    },
  }],
  ["/v1/tasks", {
    GET: async (_p, ctx) => json(200, showTask(await (await sdk(ctx)).taskByKey(requiredParam(ctx.url, "idempotencyKey")))),
    POST: async (_p, ctx) => ctx.api.submit(await sdk(ctx), await body(ctx.req)),
  }],
  ["/v1/tasks/:id", {
    GET: async (p, ctx) => json(200, showTask(await (await sdk(ctx)).task(taskId(p.id!)))),
    DELETE: async (p, ctx) => {
      const id = taskId(p.id!);
      return json(200, { taskId: id, state: await (await sdk(ctx)).cancel(id) });
    },
  }],
  ["/v1/tasks/:id/result", { GET: async (p, ctx) => ctx.api.result(await sdk(ctx), taskId(p.id!)) }],
  ["/v1/dlq", {
    GET: async (_p, ctx) => {
      const offset = intParam(ctx.url, "offset", 0);
      const limit = Math.min(1000, intParam(ctx.url, "limit", 100));
      const page = await (await sdk(ctx)).deadLetters(offset, limit);
      return json(200, { total: page.total, tasks: page.tasks.map(showTask) });
    },
    DELETE: async (_p, ctx) => json(200, { purged: await (await sdk(ctx)).purgeDeadLetters() }),
  }],
  ["/v1/dlq/:id", {
    GET: async (p, ctx) => {
      const id = taskId(p.id!);
      const info = await (await sdk(ctx)).task(id);
      if (info.state !== "failed") throw new HttpError(404, "E_UNKNOWN_TASK", `task ${id} is not in the dead-letter queue (it is ${info.state})`);
      return json(200, showTask(info));
    },
    DELETE: async (p, ctx) => {
      const id = taskId(p.id!);
      const purged = await (await sdk(ctx)).purgeDeadLetters([id]);
      if (purged === 0) throw new HttpError(404, "E_UNKNOWN_TASK", `task ${id} is not in the dead-letter queue`);
      return json(200, { taskId: id, purged: true });
    },
  }],
  ["/v1/dlq/:id/requeue", {
    POST: async (p, ctx) => {
      const id = taskId(p.id!);
      await (await sdk(ctx)).requeue(id);
      return json(200, { taskId: id, requeued: true });
    },
  }],
  ["/v1/cluster", { GET: async (_p, ctx) => json(200, publicView(await (await sdk(ctx)).clusterStats())) }],
  ["/v1/access", { GET: (_p, ctx) => json(200, { permissions: ctx.api.permissionsOf(ctx.req) }) }],
  ...DASHBOARD_ROUTES,
  ["/v1/events", { GET: async (_p, ctx) => ctx.api.events(ctx) }],
];

export class HttpApi {
  private server: HttpServer | undefined;
  private readonly loopback: LoopbackClient;
  /** SSE streams open now: all share the loopback connection, which holds at most SUBSCRIPTIONS_PER_CLIENT_MAX. */
  private eventStreams = 0;

  constructor(
    private readonly config: HttpApiConfig,
    private readonly log: Logger,
  ) {
    this.loopback = new LoopbackClient({ routerPort: config.routerPort, nodeId: `${config.nodeId}-http`, token: config.tokens.clusterToken, tls: config.tls });
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  get port(): number {
    return this.server?.port ?? 0;
  }

  start(): void {
    this.server = serveHttp({
      host: this.config.host,
      port: this.config.port,
      maxRequestBodySize: this.config.bodyBytesMax,
      tls: this.config.tls.server,
      limits: this.config.limits,
      fetch: (req) => this.handle(req),
    });
    // Started now so the lag gauge covers the time before the first scrape.
    PROCESS_SAMPLER.start();
    this.log.info("http listening", { host: this.config.host, port: this.port });
  }

  stop(): void {
    this.server?.stop();
    this.loopback.close();
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const parts = url.pathname.split("/").filter((p) => p !== "");
    const needed = permissionFor(req.method, parts);
    const refused = needed === undefined ? undefined : authorizeHttp(this.config.tokens, req.headers.get("authorization"), needed);
    if (refused) return Response.json({ error: { code: "E_UNAUTHORIZED", message: refused.message } }, { status: refused.status, headers: { "www-authenticate": "Bearer" } });
    try {
      return await this.route(req.method, parts, req, url);
    } catch (err) {
      if (err instanceof HttpError) return json(err.status, { error: { code: err.code, message: err.message } });
      if (err instanceof BatchSubmitError) return json(STATUS_OF[err.code] ?? 500, { error: { code: err.code, message: err.message }, tasks: batchOutcomes(err) });
      if (err instanceof TaskError) return json(STATUS_OF[err.code] ?? 500, { error: { code: err.code, message: err.message } });
      this.log.error("http handler failed", { path: url.pathname, error: (err as Error).message });
      return json(500, { error: { code: "E_INTERNAL", message: (err as Error).message } });
    }
  }

  private async route(method: string, parts: string[], req: Request, url: URL): Promise<Response> {
    const path = `/${parts.join("/")}`;
    const match = matchRoute(API_ROUTES, method, path);
    if (match.kind !== "found") return routeMissResponse(match, method, path);
    return match.handler(match.params, { api: this, req, url });
  }

  /** What the request's token may do, for the dashboard to disable what it may not (the routes check again). */
  permissionsOf(req: Request): Permission[] {
    const grants = httpGrants(this.config.tokens, req.headers.get("authorization"));
    return PERMISSIONS.filter((p) => grants?.has(p) === true);
  }

  /** GET /v1/events: Server-Sent Events (event-stream.ts); a bad filter or id is a 400 before the stream starts. */
  async events(ctx: RouteContext): Promise<Response> {
    let filter;
    let after = ctx.req.headers.get("last-event-id") ?? ctx.url.searchParams.get("after") ?? undefined;
    try {
      filter = filterFromQuery(ctx.url);
      if (after !== undefined) EventCursor.parse(after);
    } catch (err) {
      if (err instanceof ProtocolError) throw new HttpError(400, err.code, err.message);
      throw err;
    }
    if (after === "") after = undefined;
    const idleMs = this.config.limits.clientIdleTimeoutMs;
    const keepaliveMs = idleMs > 0 ? Math.min(SSE_KEEPALIVE_MS, Math.max(100, idleMs / 2)) : SSE_KEEPALIVE_MS;
    if (this.eventStreams >= SUBSCRIPTIONS_PER_CLIENT_MAX) {
      throw new HttpError(503, "E_UNAVAILABLE", `this port serves at most ${SUBSCRIPTIONS_PER_CLIENT_MAX} event streams at once; try again later`);
    }
    this.eventStreams++;
    try {
      const client = await this.loopback.get();
      const toJson = ({ output, ...rest }: TaskEvent) => (output === undefined ? rest : { ...rest, result: jsonResult(output) });
      return eventStream(client, filter, after, toJson, { keepaliveMs, signal: ctx.req.signal, onStop: () => this.eventStreams-- });
    } catch (err) {
      this.eventStreams--;
      throw err;
    }
  }

  /** The SDK client behind every /v1 route and /metrics. */
  sdkClient(): Promise<SchedulerClient> {
    return this.loopback.get();
  }

  /** Ready when every shard the router knows has a reachable primary. */
  async readyz(): Promise<Response> {
    const stats = await (await this.loopback.get()).clusterStats();
    const shards = new Set<number>();
    const withPrimary = new Set<number>();
    for (const c of stats.coordinators) {
      if (c.stats === undefined) continue;
      shards.add(c.stats.shard);
      if (c.stats.primary) withPrimary.add(c.stats.shard);
    }
    const missing = [...shards].filter((s) => !withPrimary.has(s));
    const ready = shards.size > 0 && missing.length === 0;
    const reason = shards.size === 0 ? "no coordinator reached" : ready ? "every shard has a primary" : `no primary for shard ${missing.join(", ")}`;
    return json(ready ? 200 : 503, { ready, reason, shards: [...shards].sort(), shardsWithoutPrimary: missing });
  }

  async submit(client: SchedulerClient, input: unknown): Promise<Response> {
    const batch = Array.isArray(input);
    const ids = await submitTasks(client, (batch ? input : [input]) as unknown[], this.config.batchMax, (i) => (batch ? `tasks[${i}]` : "body"));
    return json(201, batch ? { taskIds: ids } : { taskId: ids[0] });
  }

  async result(client: SchedulerClient, id: number): Promise<Response> {
    const info = await client.task(id);
    if (info.state === "completed") return json(200, { taskId: id, state: info.state, result: jsonResult(info.output) });
    if (info.state === "failed" || info.state === "cancelled") return json(409, { taskId: id, state: info.state, code: info.code ?? "E_CANCELLED", error: info.error ?? info.state });
    return json(202, { taskId: id, state: info.state, progress: info.progress });
  }
}

async function body(req: Request): Promise<unknown> {
  try {
    return await req.json();
  } catch {
    throw new HttpError(400, "E_BAD_REQUEST", "the body is not valid JSON");
  }
}

function requiredParam(url: URL, name: string): string {
  const text = url.searchParams.get(name);
  if (text === null || text === "") throw new HttpError(400, "E_BAD_REQUEST", `query parameter ${name} is required`);
  return text;
}

function intParam(url: URL, name: string, fallback: number): number {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new HttpError(400, "E_BAD_REQUEST", `query parameter ${name} must be a non-negative integer`);
  return n;
}
