// The router's gRPC port (--grpc-port): the REST API's operations over
// @grpc/grpc-js, with the same roles (a bearer token in the "authorization"
// metadata), limits, TLS and semantics. Every call goes through the same
// loopback SDK client and request checks (task-request.ts) that REST uses.

import {
  logVerbosity, Server, ServerCredentials, setLogger, setLogVerbosity, status,
  type Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream, type ServiceError, type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { Logger } from "../../cli/log.ts";
import { authorizeHttp, type Permission, type TokenTable } from "../../net/auth.ts";
import { formatHostPort, whyCannotListen } from "../../net/endpoints.ts";
import type { TlsSettings } from "../../net/tls.ts";
import { publicView } from "../../protocol/public-view.ts";
import { SchedulerError, type SchedulerClient, type WorkflowTask } from "../../sdk/client.ts";
import { SUBSCRIPTIONS_PER_CLIENT_MAX } from "../event-relay.ts";
import { LoopbackClient } from "../loopback-client.ts";
import { HttpError, parseTask, submitTasks } from "../task-request.ts";
import { restBodyOf, taskIdOf, taskMessage, taskResultMessage, type TaskSpecMessage } from "./messages.ts";
import { schedulerService } from "./proto.ts";
import { eventsRequest, streamEvents } from "./event-call.ts";
import { grpcError } from "./status.ts";
import { WaitedTaskEndings, type TaskEndings } from "./task-endings.ts";

/** Streams (calls) in flight on one HTTP/2 connection; past it the client waits for one to end. */
export const GRPC_STREAMS_PER_CONNECTION_MAX = 1000;

/** Most dead letters listed by one call (as GET /v1/dlq). */
const DLQ_PAGE_MAX = 1000;
const DLQ_PAGE_DEFAULT = 100;

export interface GrpcApiConfig {
  host: string;
  port: number;
  /** The router's own TCP port. */
  routerPort: number;
  nodeId: string;
  /** Largest request message (as --http-body-bytes-max for REST). */
  messageBytesMax: number;
  /** Most tasks in one SubmitBatch or SubmitWorkflow, most tasks one Watch names (--http-batch-max). */
  batchMax: number;
  /** A connection with no call this long is closed (0: never). */
  idleTimeoutMs: number;
  tokens: TokenTable;
  tls: TlsSettings;
}

type Request = Record<string, unknown>;
type UnaryRun = (request: Request, client: SchedulerClient) => Promise<unknown>;

export class GrpcApi {
  private readonly server: Server;
  private readonly loopback: LoopbackClient;
  private readonly endings: TaskEndings;
  private boundPort = 0;
  /** Events streams open now: all share the loopback connection, which holds at most SUBSCRIPTIONS_PER_CLIENT_MAX. */
  private eventStreams = 0;

  constructor(
    private readonly config: GrpcApiConfig,
    private readonly log: Logger,
  ) {
    this.loopback = new LoopbackClient({ routerPort: config.routerPort, nodeId: `${config.nodeId}-grpc`, token: config.tokens.clusterToken, tls: config.tls });
    this.endings = new WaitedTaskEndings(() => this.loopback.get());
    // grpc-js's own complaints (bind failures, broken connections) into our log, not bare lines on stderr.
    setLogger({ error: (...args: unknown[]) => log.warn("grpc library", { message: args.join(" ") }), info: () => {}, debug: () => {} });
    setLogVerbosity(logVerbosity.ERROR);
    this.server = new Server({
      "grpc.max_receive_message_length": config.messageBytesMax,
      "grpc.max_concurrent_streams": GRPC_STREAMS_PER_CONNECTION_MAX,
      ...(config.idleTimeoutMs > 0 ? { "grpc.max_connection_idle_ms": config.idleTimeoutMs } : {}),
    });
    this.server.addService(schedulerService().service, this.handlers());
  }

  get port(): number {
    return this.boundPort;
  }

  /** Binds the port; rejects (naming it) when it cannot. */
  start(): Promise<void> {
    const { host, port, tls } = this.config;
    const credentials = tls.server === undefined
      ? ServerCredentials.createInsecure()
      : ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(tls.server.cert), private_key: Buffer.from(tls.server.key) }], false);
    return new Promise((resolve, reject) => {
      this.server.bindAsync(formatHostPort(host, port), credentials, (err, bound) => {
        // grpc-js puts the errno name only in its message.
        if (err) return reject(whyCannotListen(host, port, err, /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(err.message)?.[1]));
        this.boundPort = bound;
        this.log.info("grpc listening", { host, port: bound });
        resolve();
      });
    });
  }

  stop(): void {
    this.server.forceShutdown();
    this.loopback.close();
  }

  private handlers(): UntypedServiceImplementation {
    const { batchMax } = this.config;
    return {
      Submit: this.unary("submit", async (r, c) => ({ taskId: (await submitTasks(c, [restBodyOf(r as TaskSpecMessage, "task")], batchMax, () => "task"))[0] })),
      SubmitBatch: this.unary("submit", async (r, c) => {
        const specs = (r.tasks as TaskSpecMessage[] | undefined) ?? [];
        return { taskIds: await submitTasks(c, specs.map((s, i) => restBodyOf(s, `tasks[${i}]`)), batchMax, (i) => `tasks[${i}]`) };
      }),
      SubmitWorkflow: this.unary("submit", async (r, c) => ({ taskIds: await c.workflow(workflowTasks(r, batchMax)) })),
      GetTask: this.unary("read", async (r, c) => taskMessage(await c.task(taskIdOf(r.taskId)))),
      GetResult: this.unary("read", async (r, c) => taskResultMessage(await c.task(taskIdOf(r.taskId)))),
      Cancel: this.unary("submit", async (r, c) => {
        const id = taskIdOf(r.taskId);
        return { taskId: id, state: await c.cancel(id) };
      }),
      ListDeadLetters: this.unary("read", async (r, c) => {
        const page = await c.deadLetters(Number(r.offset ?? 0), Math.min(DLQ_PAGE_MAX, Number(r.limit ?? 0) || DLQ_PAGE_DEFAULT));
        return { total: page.total, tasks: page.tasks.map(taskMessage) };
      }),
      Requeue: this.unary("admin", async (r, c) => {
        const id = taskIdOf(r.taskId);
        await c.requeue(id);
        return { taskId: id, requeued: true };
      }),
      PurgeDeadLetters: this.unary("admin", async (r, c) => {
        const ids = ((r.taskIds as unknown[] | undefined) ?? []).map((id, i) => taskIdOf(id, `task_ids[${i}]`));
        return { purged: await c.purgeDeadLetters(ids) };
      }),
      ClusterStats: this.unary("read", async (_r, c) => ({ json: JSON.stringify(publicView(await c.clusterStats())) })),
      Watch: (call: ServerWritableStream<Request, unknown>) => this.watch(call),
      Events: (call: ServerWritableStream<Request, unknown>) => this.events(call),
    };
  }

  /** A unary handler: the caller's token checked for `needs`, then `run` with the loopback client; errors mapped. */
  private unary(needs: Permission, run: UnaryRun) {
    return (call: ServerUnaryCall<Request, unknown>, callback: sendUnaryData<unknown>) => {
      const refused = this.refusal(call.metadata, needs);
      if (refused !== undefined) return callback(refused);
      this.loopback.get()
        .then((client) => run(call.request ?? {}, client))
        .then((reply) => callback(null, reply), (err: unknown) => callback(this.errorOf(err, call.getPath())));
    };
  }

  /**
   * Watch: one TaskEvent per task named as it ends, then the end of the
   * stream. Events are few and small (at most --http-batch-max per stream), so
   * a slow reader holds at most that many in grpc-js's buffer.
   */
  private watch(call: ServerWritableStream<Request, unknown>): void {
    const fail = (error: Partial<ServiceError>): void => {
      call.emit("error", error);
    };
    const refused = this.refusal(call.metadata, "read");
    if (refused !== undefined) return fail(refused);
    let ids: number[];
    try {
      ids = [...new Set(((call.request?.taskIds as unknown[] | undefined) ?? []).map((id, i) => taskIdOf(id, `task_ids[${i}]`)))];
      if (ids.length === 0) throw new HttpError(400, "E_BAD_REQUEST", "name at least one task in task_ids");
      if (ids.length > this.config.batchMax) throw new HttpError(413, "E_TOO_LARGE", `at most ${this.config.batchMax} tasks per watch`);
    } catch (err) {
      return fail(this.errorOf(err, call.getPath()));
    }
    const gone = new AbortController();
    call.on("cancelled", () => gone.abort());
    this.endings.watch(ids, (info) => call.write({ taskId: info.taskId, state: info.state, task: taskMessage(info) }), gone.signal).then(
      () => call.end(),
      (err: unknown) => {
        if (!gone.signal.aborted) fail(this.errorOf(err, call.getPath()));
      },
    );
  }

  /** Events: every shard's task events through the filter, resumable by id (event-call.ts). */
  private events(call: ServerWritableStream<Request, unknown>): void {
    const refused = this.refusal(call.metadata, "read");
    if (refused !== undefined) return void call.emit("error", refused);
    let request: ReturnType<typeof eventsRequest>;
    try {
      request = eventsRequest(call.request ?? {});
    } catch (err) {
      return void call.emit("error", this.errorOf(err, call.getPath()));
    }
    if (this.eventStreams >= SUBSCRIPTIONS_PER_CLIENT_MAX) {
      return void call.emit("error", grpcError("E_UNAVAILABLE", `this port serves at most ${SUBSCRIPTIONS_PER_CLIENT_MAX} event streams at once; try again later`));
    }
    this.eventStreams++;
    let counted = true;
    const uncount = () => {
      if (counted) this.eventStreams--;
      counted = false;
    };
    call.once("close", uncount);
    this.loopback.get().then(
      (client) => streamEvents(call, client, request.filter, request.after, uncount),
      (err: unknown) => {
        uncount();
        call.emit("error", this.errorOf(err, call.getPath()));
      },
    );
  }

  /** UNAUTHENTICATED for a missing or invalid token, PERMISSION_DENIED for one without the role; undefined when allowed. */
  private refusal(metadata: Metadata, needs: Permission): Partial<ServiceError> | undefined {
    const authorization = metadata.get("authorization")[0];
    const refused = authorizeHttp(this.config.tokens, typeof authorization === "string" ? authorization : null, needs);
    if (refused === undefined) return undefined;
    return grpcError("E_UNAUTHORIZED", refused.message, refused.status === 401 ? status.UNAUTHENTICATED : status.PERMISSION_DENIED);
  }

  private errorOf(err: unknown, path: string): Partial<ServiceError> {
    if (err instanceof HttpError || err instanceof SchedulerError) return grpcError(err.code, err.message);
    this.log.error("grpc handler failed", { path, error: (err as Error).message });
    return grpcError("E_INTERNAL", (err as Error).message);
  }
}

/** A WorkflowRequest's nodes as the SDK's workflow tasks, each checked as a REST task is. */
function workflowTasks(request: Request, batchMax: number): WorkflowTask[] {
  const nodes = (request.nodes as Array<{ task?: TaskSpecMessage; dependsOnNodes?: number[]; dependsOnTasks?: unknown[] }> | undefined) ?? [];
  if (nodes.length === 0) throw new HttpError(400, "E_BAD_REQUEST", "a workflow needs at least one node");
  if (nodes.length > batchMax) throw new HttpError(413, "E_TOO_LARGE", `at most ${batchMax} tasks per workflow`);
  return nodes.map((node, i) => {
    const where = `nodes[${i}].task`;
    const { dependsOn: _parentsGivenBelow, ...spec } = node.task ?? {};
    const { type, payload, options } = parseTask(restBodyOf(spec, where), where);
    const parents = [
      ...(node.dependsOnNodes ?? []).map((n) => ({ node: n })),
      ...(node.dependsOnTasks ?? []).map((id, j) => ({ taskId: taskIdOf(id, `nodes[${i}].depends_on_tasks[${j}]`) })),
    ];
    return { type, payload, ...options, dependsOn: parents };
  });
}
