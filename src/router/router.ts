// The router: one address in front of many shards. Clients speak the same
// protocol as to a coordinator; the router picks a shard per new task (hash of
// its idempotency key, else round-robin), forwards by task id for queries, and
// fans STATS out to every coordinator. Hot messages are forwarded as raw bytes
// with only the request id patched, batched per upstream link. Its own
// requests to coordinators are in upstream-ask.ts; dependencies across shards
// in cross-shard.ts.

import type { Logger } from "../cli/log.ts";
import { ShardMap } from "../core/shard-map.ts";
import { shardOfTask } from "../core/task.ts";
import { CoordinatorLink } from "../net/coordinator-link.ts";
import { followCoordinators, type EtcdSettings } from "../net/etcd-discovery.ts";
import { authorizeHello, authorizeKind, type Grants, type TokenTable } from "../net/auth.ts";
import type { Connection, ConnectionHandler, NetLimits } from "../net/connection.ts";
import type { TlsSettings } from "../net/tls.ts";
import { Routes } from "./routes.ts";
import { BATCH_PART_TIMEOUT_MS, routeSubmitBatch, type BatchRouterPort } from "./batch-route.ts";
import { answerTaskByKey, type ShardAnswer } from "./task-by-key.ts";
import { EventRelay } from "./event-relay.ts";
import { askUpstream, statsOfUpstream, unavailable, type Upstream } from "./upstream-ask.ts";
import { CrossShardDependencies } from "./cross-shard.ts";
import { listen, type HostPort, type Listener } from "../net/endpoints.ts";
import { copyWithRequestId, readControl, readSubmit, SUBMIT_FLAGS_AT, writeControl, type Reader } from "../protocol/codec.ts";
import { readSubmittedBatch } from "../protocol/batch-codec.ts";
import { ProtocolError, type ErrorCode } from "../protocol/errors.ts";
import {
  Kind, KIND_NAMES, PROTOCOL_VERSION, ROLES, SUBMIT_BATCH_TASKS_MAX, SUBMIT_FLAG_EXTRAS, SUBMIT_FLAG_NOTIFY,
  type ClusterStats, type ErrorMessage, type Hello, type Role, type Welcome,
} from "../protocol/messages.ts";

export interface RouterConfig {
  host: string;
  port: number;
  nodeId: string;
  /** Dialled at start and kept whatever etcd says. */
  coordinators: HostPort[];
  /** Also follow the coordinators registered in etcd (--etcd). */
  etcd?: EtcdSettings | undefined;
  limits: NetLimits;
  /** Who may connect and do what; its cluster token is what the router presents to coordinators. */
  tokens: TokenTable;
  /** Serve TLS to clients and dial coordinators over TLS, or neither. */
  tls: TlsSettings;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** How long a STATS fan-out, or any request of the router's own, waits for a coordinator. */
  statsTimeoutMs: number;
  /** How often dependencies across shards are settled (a parent's end reaches its dependants within about this). */
  crossShardPollMs: number;
  /** The cluster's shards (--shards), ids 0..N-1: keys hash over all of them; 0: over those heard from. */
  shards?: number;
}

// SUBMIT body layout (codec.ts): requestId u32 | priority u8 | flags u8 | maxAttempts u16 | timeoutMs u32 | type str8 | key str8 | payload
const SUBMIT_TYPE_AT = 12;

export class Router implements ConnectionHandler {
  private listener: Listener | undefined;
  private readonly upstreams: Upstream[] = [];
  /** The primary link of each shard. */
  private readonly primaries = new Map<number, Upstream>();
  private readonly shardMap: ShardMap;
  private readonly clients = new Set<Connection>();
  private readonly startedAt = Date.now();
  private forwarded = 0;
  private discovery: { close(): void } | undefined;
  private readonly upstreamHello: Hello;
  /** Clients' task event subscriptions, one per shard primary each. */
  private readonly events = new EventRelay({ shards: () => this.shardMap.known, primaryOf: (shard) => this.primaries.get(shard) });
  private readonly crossShard: CrossShardDependencies;

  constructor(
    readonly config: RouterConfig,
    private readonly log: Logger,
  ) {
    this.upstreamHello = { role: "router", version: PROTOCOL_VERSION, nodeId: config.nodeId, token: config.tokens.clusterToken };
    this.shardMap = new ShardMap(config.shards ?? 0);
    this.crossShard = new CrossShardDependencies({
      primaryOf: (shard) => this.primaries.get(shard),
      primaries: () => [...this.primaries.values()],
      ask: (upstream, kind, body) => this.ask(upstream, kind, body),
    }, config);
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  start(): void {
    for (const address of this.config.coordinators) this.addUpstream(address);
    if (this.config.etcd !== undefined) {
      this.discovery = followCoordinators(this.config.etcd, this.config.coordinators, this.log, { add: (a) => this.addUpstream(a), remove: (a) => this.removeUpstream(a) });
    }
    this.listener = listen(this.config.host, this.config.port, this, this.config.limits, (conn) => this.clients.add(conn), this.config.tls.server);
    this.crossShard.start();
    this.log.info("listening", { host: this.config.host, port: this.port, coordinators: this.upstreams.map((u) => u.link.label), etcd: this.config.etcd?.endpoints });
  }

  stop(): void {
    this.crossShard.stop();
    this.discovery?.close();
    this.listener?.stop();
    for (const u of this.upstreams) u.link.close();
    for (const c of this.clients) c.close("router stopping");
  }

  /** Dials a coordinator; it is routed to once it says it is a shard's primary. A known address is left as it is. */
  addUpstream(address: HostPort): void {
    if (this.upstreamAt(address) !== undefined) return;
    const upstream: Upstream = { link: undefined as unknown as CoordinatorLink, routes: new Routes() };
    upstream.link = new CoordinatorLink(address, {
      hello: this.upstreamHello, limits: this.config.limits, tls: this.config.tls.client, reconnectMinMs: this.config.reconnectMinMs, reconnectMaxMs: this.config.reconnectMaxMs,
    }, this.log, {
      onMessage: (_l, kind, r) => this.fromUpstream(upstream, kind, r),
      onUp: (l) => this.upstreamUp(upstream, l),
      onRole: (l) => this.upstreamUp(upstream, l),
      onDown: (_l, reason) => this.upstreamDown(upstream, reason),
    });
    this.upstreams.push(upstream);
    upstream.link.connect();
  }

  /** Forgets a coordinator (gone from etcd): its requests in flight fail as retryable, as when its link drops. */
  removeUpstream(address: HostPort): void {
    const upstream = this.upstreamAt(address);
    if (upstream === undefined) return;
    this.upstreams.splice(this.upstreams.indexOf(upstream), 1);
    this.upstreamDown(upstream, "removed from the cluster");
    upstream.link.close();
    // Its shard's last coordinator: the shard is gone from the cluster, not failing over, so
    // fan-outs stop waiting for its answer (they would refuse for good) and new tasks go elsewhere.
    const shard = upstream.link.shard;
    if (shard >= 0 && !this.upstreams.some((u) => u.link.shard === shard)) this.shardMap.remove(shard);
    this.log.info("coordinator removed", { coordinator: upstream.link.label, shard: upstream.link.shard });
  }

  private upstreamAt(address: HostPort): Upstream | undefined {
    return this.upstreams.find((u) => u.link.address.host === address.host && u.link.address.port === address.port);
  }

  // ------------------------------------------------------------ clients

  onMessage(conn: Connection, kind: number, r: Reader): void {
    if (conn.state.role === undefined) {
      if (kind !== Kind.HELLO) throw new ProtocolError("E_BAD_HELLO", `first message must be HELLO, got kind ${kind}`);
      return this.hello(conn, readControl<Hello>(r));
    }
    authorizeKind(conn.state.grants as Grants, kind, KIND_NAMES[kind] ?? `kind ${kind}`);
    switch (kind) {
      case Kind.SUBMIT:
        return this.routeSubmit(conn, r);
      case Kind.SUBMIT_BATCH:
        return routeSubmitBatch(this.batchPort, conn, r);
      case Kind.TASK_QUERY:
      case Kind.CANCEL:
      case Kind.WATCH:
      case Kind.DLQ_REQUEUE: {
        // Requests about one task go to the shard its id names.
        const q = readControl<Record<string, unknown>>(r);
        const requestId = Number(q.requestId) || 0;
        if (kind === Kind.TASK_QUERY && typeof q.idempotencyKey === "string" && q.idempotencyKey !== "") return this.taskByKey(conn, requestId, q.idempotencyKey);
        const taskId = Number(q.taskId);
        if (!Number.isSafeInteger(taskId) || taskId < 0) return conn.sendError(requestId, "E_BAD_REQUEST", "taskId must be a non-negative integer");
        const upstream = this.primaries.get(shardOfTask(taskId));
        if (upstream === undefined) return this.refuseShard(conn, requestId, shardOfTask(taskId));
        return this.forwardControl(upstream, conn, requestId, kind, { ...q, taskId }, kind === Kind.WATCH);
      }
      case Kind.WORKFLOW:
        return this.routeWorkflow(conn, readControl<Record<string, unknown>>(r));
      case Kind.SUBSCRIBE:
      case Kind.UNSUBSCRIBE:
        return this.events.message(conn, kind, r);
      case Kind.DLQ_LIST:
      case Kind.DLQ_PURGE:
        return this.fanOut(conn, kind, readControl<Record<string, unknown>>(r));
      case Kind.STATS_REQUEST: {
        const q = readControl<{ requestId?: unknown }>(r);
        void this.whileWaiting(conn, this.clusterStats(Number(q.requestId) || 0)).then((stats) => {
          if (!conn.writable()) return;
          writeControl(conn.writer, Kind.STATS, stats);
          conn.queueFlush();
        });
        return;
      }
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from a ${conn.state.role as string}`);
    }
  }

  onClose(conn: Connection): void {
    this.clients.delete(conn);
    this.events.clientClosed(conn);
  }

  private hello(conn: Connection, hello: Hello): void {
    if (hello.version !== PROTOCOL_VERSION) {
      throw new ProtocolError("E_BAD_VERSION", `client speaks protocol version ${hello.version}; this router speaks ${PROTOCOL_VERSION}`);
    }
    const role = hello.role as Role;
    if (!ROLES.includes(role) || role === "worker" || role === "coordinator") {
      throw new ProtocolError("E_BAD_HELLO", `role "${String(hello.role)}" cannot connect to a router (workers connect to coordinators)`);
    }
    conn.state.grants = authorizeHello(this.config.tokens, role, hello.token);
    conn.handshakeDone(role);
    conn.state.role = role;
    const welcome: Welcome = { role: "router", version: PROTOCOL_VERSION, nodeId: this.config.nodeId, shard: -1, epoch: 0, primary: true };
    writeControl(conn.writer, Kind.WELCOME, welcome);
    conn.queueFlush();
  }

  private routeSubmit(conn: Connection, r: Reader): void {
    const { bytes, pos, end } = r;
    if (end - pos < SUBMIT_TYPE_AT + 2) throw new ProtocolError("E_BAD_FRAME", "SUBMIT too short");
    const requestId = r.view.getUint32(pos, true);
    const keyAt = pos + SUBMIT_TYPE_AT + 1 + bytes[pos + SUBMIT_TYPE_AT]!;
    if (keyAt >= end) throw new ProtocolError("E_BAD_FRAME", "SUBMIT truncated before its key");
    const keyEnd = keyAt + 1 + bytes[keyAt]!;
    if (keyEnd > end) throw new ProtocolError("E_BAD_FRAME", "SUBMIT truncated inside its key");
    if ((bytes[pos + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_EXTRAS) === 0) {
      return this.forwardSubmit(conn, requestId, this.shardMap.pick(bytes, keyAt + 1, keyEnd), bytes, pos, end);
    }
    // The rarer submission with options: decode it whole. A task goes to the shard of its first
    // parent; parents on other shards must exist (checked there first) and are waited on across shards.
    const parents = readSubmit(r).extras?.dependsOn ?? [];
    r.pos = pos;
    if (parents.length === 0) return this.forwardSubmit(conn, requestId, this.shardMap.pick(bytes, keyAt + 1, keyEnd), bytes, pos, end);
    const shard = shardOfTask(parents[0]!);
    const body = bytes.slice(pos, end); // the frame is reused once this call returns; the check may not be done by then
    this.afterParentsChecked(conn, requestId, shard, parents, () => this.forwardSubmit(conn, requestId, shard, body, 0, body.length));
  }

  /** Sends a SUBMIT body (bytes[pos, end)) to the primary of `shard`, to answer `conn` under its request id. */
  private forwardSubmit(conn: Connection, requestId: number, shard: number, bytes: Uint8Array, pos: number, end: number): void {
    const upstream = this.primaries.get(shard);
    if (upstream === undefined) return this.refuseShard(conn, requestId, shard);
    const out = upstream.link.writableConnection();
    if (out === undefined) return conn.sendError(requestId, "E_UNAVAILABLE", `shard ${shard} is not reachable now; retry`);
    const upstreamId = upstream.routes.open({ client: conn, clientRequestId: requestId, awaitsDone: (bytes[pos + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_NOTIFY) !== 0 });
    copyWithRequestId(out.writer, Kind.SUBMIT, bytes, pos, end, upstreamId);
    out.queueFlush();
    this.forwarded++;
  }

  private refuseShard(conn: Connection, requestId: number, shard: number): void {
    const refusal = this.shardRefusal(shard);
    conn.sendError(requestId, refusal.code, refusal.message);
  }

  private shardRefusal(shard: number): { code: ErrorCode; message: string } {
    if (this.shardMap.unheard().includes(shard)) return { code: "E_UNAVAILABLE", message: `${this.notHeardYet(shard)}; retry` };
    if (shard < 0 || !this.shardMap.known.includes(shard)) {
      return { code: "E_UNKNOWN_SHARD", message: shard < 0 ? "no coordinator has been reached yet; retry" : `no coordinator serves shard ${shard}` };
    }
    return { code: "E_UNAVAILABLE", message: `shard ${shard} has no reachable primary now; retry` };
  }

  /** What a SUBMIT_BATCH needs of the router (batch-route.ts). */
  private readonly batchPort: BatchRouterPort = {
    shardMap: () => this.shardMap,
    primary: (shard) => {
      const upstream = this.primaries.get(shard);
      if (upstream === undefined) return this.shardRefusal(shard);
      const conn = upstream.link.writableConnection();
      if (conn === undefined) return { code: "E_UNAVAILABLE", message: `shard ${shard} is not reachable now; retry` };
      return { routes: upstream.routes, conn };
    },
    forwarded: (tasks) => (this.forwarded += tasks),
    partTimeoutMs: BATCH_PART_TIMEOUT_MS,
  };

  /**
   * A workflow is created on one shard: the shard of the existing tasks it depends on, else
   * the shard of its first idempotency key (so a retry finds the first submission's tasks),
   * else the next in turn.
   */
  private routeWorkflow(conn: Connection, q: Record<string, unknown>): void {
    const requestId = Number(q.requestId) || 0;
    const nodes = Array.isArray(q.nodes) ? (q.nodes as Array<{ dependsOn?: unknown; idempotencyKey?: unknown }>) : [];
    const existing: number[] = [];
    for (const node of nodes) {
      if (!Array.isArray(node?.dependsOn)) continue;
      for (const d of node.dependsOn as Array<{ taskId?: unknown }>) {
        if (d && typeof d === "object" && typeof d.taskId === "number" && Number.isSafeInteger(d.taskId)) existing.push(d.taskId);
      }
    }
    const firstKey = nodes.find((n) => typeof n?.idempotencyKey === "string" && n.idempotencyKey !== "")?.idempotencyKey as string | undefined;
    const key = firstKey === undefined ? new Uint8Array(0) : new TextEncoder().encode(firstKey);
    const shard = existing.length > 0 ? shardOfTask(existing[0]!) : this.shardMap.pick(key, 0, key.length);
    this.afterParentsChecked(conn, requestId, shard, existing, () => {
      const upstream = this.primaries.get(shard);
      if (upstream === undefined) return this.refuseShard(conn, requestId, shard);
      this.forwardControl(upstream, conn, requestId, Kind.WORKFLOW, q);
    });
  }

  // ------------------------------------------------------------ dependencies across shards

  /**
   * Runs `forward` (the request, to `shard`) at once when every parent is on
   * that shard; else once the parents on other shards are confirmed to exist
   * there, or answers the client's request with why not.
   */
  private afterParentsChecked(conn: Connection, requestId: number, shard: number, parents: readonly number[], forward: () => void): void {
    const foreign = parents.filter((p) => shardOfTask(p) !== shard);
    if (foreign.length === 0) return forward();
    void this.whileWaiting(conn, this.crossShard.missingParent(foreign)).then((missing) => {
      if (conn.closed) return;
      if (missing === undefined) forward();
      else conn.sendError(requestId, missing.code, missing.message);
    });
  }

  /** DLQ list and purge cover every shard: ask each one's primary, merge the answers (all of them, or fail). */
  private fanOut(conn: Connection, kind: number, q: Record<string, unknown>): void {
    const requestId = Number(q.requestId) || 0;
    const offset = Math.max(0, Number(q.offset) || 0);
    const limit = Math.max(1, Number(q.limit) || 100);
    const perShard = kind === Kind.DLQ_LIST ? { ...q, offset: 0, limit: offset + limit } : q;
    void this.whileWaiting(conn, this.askEveryShard(kind, perShard)).then((answers) => {
      if (!conn.writable()) return;
      const failed = answers.find((a) => a.kind === Kind.ERROR);
      if (failed !== undefined) return conn.sendError(requestId, "E_UNAVAILABLE", `a shard did not answer: ${String(failed.body.message)}`);
      let reply: Record<string, unknown>;
      if (kind === Kind.DLQ_LIST) {
        const tasks = answers.flatMap((a) => (a.body.tasks as Array<{ finishedAt: number }>) ?? []).sort((x, y) => x.finishedAt - y.finishedAt);
        reply = { requestId, tasks: tasks.slice(offset, offset + limit), total: answers.reduce((n, a) => n + Number(a.body.total ?? 0), 0) };
      } else {
        reply = { requestId, purged: answers.reduce((n, a) => n + Number(a.body.purged ?? 0), 0) };
      }
      writeControl(conn.writer, Kind.REPLY, reply);
      conn.queueFlush();
    });
  }

  /** A task by idempotency key: asked of every shard (see task-by-key.ts). */
  private taskByKey(conn: Connection, requestId: number, idempotencyKey: string): void {
    void this.whileWaiting(conn, this.askEveryShard(Kind.TASK_QUERY, { idempotencyKey })).then((answers) => answerTaskByKey(conn, requestId, idempotencyKey, answers));
  }

  /**
   * One answer per known shard, not per current primary: a shard mid-failover (no primary
   * now) answers E_UNAVAILABLE, so a merged answer never passes for the whole cluster's.
   * So does a configured coordinator that has never said which shard it serves (not
   * connected since the router started): its shard may be one the router does not know yet.
   */
  private askEveryShard(kind: number, body: Record<string, unknown>): Promise<ShardAnswer[]> {
    const unheard = this.upstreams.filter((u) => u.link.shard < 0).map((u) => unavailable(`coordinator ${u.link.label} has not said which shard it serves yet`));
    // With --shards, a shard no coordinator of has answered yet (etcd discovery may not list it now).
    for (const shard of this.shardMap.unheard()) unheard.push(unavailable(this.notHeardYet(shard)));
    return Promise.all([...unheard.map((a) => Promise.resolve(a)), ...this.shardMap.known.map((shard) => {
      const primary = this.primaries.get(shard);
      if (primary !== undefined) return this.ask(primary, kind, body);
      return Promise.resolve(unavailable(`shard ${shard} has no primary now (failing over)`));
    })]);
  }

  private notHeardYet(shard: number): string {
    return `no coordinator of shard ${shard} (of --shards ${this.shardMap.shardCount}) has been reached yet`;
  }

  /** The router's own request to one coordinator (upstream-ask.ts). */
  private ask(upstream: Upstream, kind: number, body: Record<string, unknown>): Promise<ShardAnswer> {
    return askUpstream(upstream, kind, body, this.config.statsTimeoutMs);
  }

  private forwardControl(upstream: Upstream, conn: Connection, requestId: number, kind: number, body: Record<string, unknown>, awaitsDone = false): void {
    const upstreamId = upstream.routes.open({ client: conn, clientRequestId: requestId, awaitsDone });
    if (!upstream.link.sendControl(kind, { ...body, requestId: upstreamId })) {
      upstream.routes.close(upstreamId);
      conn.sendError(requestId, "E_UNAVAILABLE", `coordinator ${upstream.link.label} is not reachable now; retry`);
    }
  }

  /** The client waits for `work` (a fan-out, a check on other shards): it is not idle meanwhile. */
  private whileWaiting<T>(conn: Connection, work: Promise<T>): Promise<T> {
    conn.idle.startWait();
    return work.finally(() => conn.idle.endWait());
  }

  // ------------------------------------------------------------ upstreams

  private fromUpstream(upstream: Upstream, kind: number, r: Reader): void {
    switch (kind) {
      case Kind.SUBMITTED:
      case Kind.TASK_DONE:
        return this.answerRaw(upstream, kind, r);
      case Kind.EVENTS:
        return this.events.fromUpstream(upstream, r);
      case Kind.SUBMITTED_BATCH: {
        const answer = readSubmittedBatch(r, SUBMIT_BATCH_TASKS_MAX);
        upstream.routes.close(answer.requestId)?.onBatch?.(answer.outcomes);
        return;
      }
      case Kind.ERROR:
      case Kind.TASK_INFO:
      case Kind.REPLY:
      case Kind.STATS: {
        const body = readControl<{ requestId?: unknown } & Partial<ErrorMessage>>(r);
        const upstreamId = Number(body.requestId);
        const route = upstream.routes.close(upstreamId);
        if (route === undefined) return;
        if (route.onControl !== undefined) return route.onControl(kind, body);
        if (route.client === undefined || !route.client.writable()) return;
        writeControl(route.client.writer, kind, { ...body, requestId: route.clientRequestId });
        route.client.queueFlush();
        return;
      }
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from coordinator ${upstream.link.label}`);
    }
  }

  /** SUBMITTED / TASK_DONE: both start with the request id; forward the bytes with the client's id. */
  private answerRaw(upstream: Upstream, kind: number, r: Reader): void {
    if (r.end - r.pos < 4) throw new ProtocolError("E_BAD_FRAME", "answer too short");
    const upstreamId = r.view.getUint32(r.pos, true);
    const route = upstream.routes.get(upstreamId);
    if (route === undefined) return;
    if (kind === Kind.TASK_DONE || !route.awaitsDone) upstream.routes.close(upstreamId);
    if (kind === Kind.SUBMITTED && route.awaitsDone) return; // the client hears once, when the task ends
    if (route.client === undefined || !route.client.writable()) return;
    copyWithRequestId(route.client.writer, kind, r.bytes, r.pos, r.end, route.clientRequestId);
    route.client.queueFlush();
  }

  /** A coordinator connected or announced its role: route to the best primary of its shard. */
  private upstreamUp(upstream: Upstream, link: CoordinatorLink): void {
    if (!this.upstreams.includes(upstream)) return; // removed; its socket may still deliver a message or two
    const warning = this.shardMap.add(link.shard);
    if (warning !== undefined) this.log.warn(warning, { coordinator: link.label, shard: link.shard, shardsKnown: this.shardMap.known });
    if (!link.primary && this.primaries.get(link.shard) === upstream) {
      // Stepped down: what it was doing for clients will not finish there.
      this.failRoutes(upstream, `coordinator ${link.label} is no longer the primary; retry`);
    }
    this.choosePrimary(link.shard);
  }

  /** Requests in flight on a lost link fail as retryable; clients resubmit under the same idempotency key. */
  private upstreamDown(upstream: Upstream, reason: string): void {
    this.failRoutes(upstream, `coordinator ${upstream.link.label} lost: ${reason}; retry`);
    if (this.primaries.get(upstream.link.shard) === upstream) this.choosePrimary(upstream.link.shard);
  }

  /**
   * The shard's primary is the live link that says primary with the highest epoch, ties to
   * the lower address as the coordinators break them (two can say primary of one epoch for
   * a moment at start-up); chosen again whenever one changes, so a step-down falls back to
   * the other one instead of leaving the shard without a route.
   */
  private choosePrimary(shard: number): void {
    let best: Upstream | undefined;
    for (const u of this.upstreams) {
      const l = u.link;
      if (!l.up || !l.primary || l.shard !== shard) continue;
      if (best === undefined || l.epoch > best.link.epoch || (l.epoch === best.link.epoch && l.label < best.link.label)) best = u;
    }
    const current = this.primaries.get(shard);
    if (best === current) return;
    if (current !== undefined) this.failRoutes(current, `${best?.link.label ?? "no coordinator"} is the primary of shard ${shard} now; retry`);
    if (best === undefined) {
      this.primaries.delete(shard);
      return;
    }
    this.primaries.set(shard, best);
    this.log.info("shard primary", { shard, primary: best.link.label, epoch: best.link.epoch });
    this.events.primaryChanged(shard);
  }

  private failRoutes(upstream: Upstream, message: string): void {
    upstream.routes.failAll(message);
  }

  // ------------------------------------------------------------ stats

  private async clusterStats(requestId: number): Promise<ClusterStats> {
    const coordinators = await Promise.all(this.upstreams.map((u) => statsOfUpstream(u, this.config.statsTimeoutMs)));
    return {
      requestId,
      router: { nodeId: this.config.nodeId, uptimeMs: Date.now() - this.startedAt, clients: this.clients.size, forwarded: this.forwarded, retried: 0 },
      coordinators,
    };
  }
}
