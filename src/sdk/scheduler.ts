// The SDK's front door: one client over several routers or coordinators that
// reconnects with backoff, fails over, follows role changes and re-sends
// in-flight requests under their idempotency keys. Built on SchedulerClient
// (one connection, no retries), which stays available for tools that want that.

import { encode } from "@msgpack/msgpack";
import { backoffDelayMs } from "../net/backoff.ts";
import { parseHostPort, type HostPort } from "../net/endpoints.ts";
import type { ClusterStats, CoordinatorStats, TaskInfo } from "../protocol/messages.ts";
import { BatchSubmitError, checkSubmitOptions, decodeResult, SchedulerClient, type BatchItemOutcome, type ClientOptions, type SubmitOptions, type TaskOutcome, type WorkflowTask } from "./client.ts";
import { asSchedulerError, isErrorCode, SchedulerError, TaskFailedError } from "./errors.ts";
import { DEFAULT_RETRY, idempotencyKeyOf, nextStep, RESENDS_MAX, ServerRotation, type RetryOptions } from "./failover.ts";
import { TaskEvents, type EventsOptions } from "./events.ts";
import { TaskHandle, type AnyTasks, type HandleOwner, type PayloadOf, type ResultOf, type TaskName, type TaskState, type TaskStatus, type TaskTypes } from "./task-handle.ts";

/** The calls the failover client makes on one connection (a SchedulerClient; a fake in unit tests). */
export type Link = Pick<SchedulerClient,
  "submit" | "submitBatch" | "run" | "wait" | "task" | "cancel" | "workflow" | "deadLetters" | "requeue" | "purgeDeadLetters"
  | "stats" | "clusterStats" | "close" | "closed" | "onRole" | "subscribe">;

export interface ConnectOptions {
  /** Routers or coordinators, "host:port" (any mix; the client spreads over them and fails over along them). */
  servers: Array<string | HostPort>;
  /** Presented in every handshake; the servers' tokens file gives it a role (read, submit, admin). */
  token?: string;
  /** PEM text of the CA that signed the servers' certificates: connect over TLS and verify them. */
  tlsCa?: string;
  retry?: RetryOptions;
  /** Names this client in the servers' logs and stats. Default "sdk-<pid>". */
  nodeId?: string;
  /** Source of randomness in [0, 1) for the starting server and jitter. Default Math.random. */
  random?: () => number;
  /** Opens one connection; tests hand in a fake. Default SchedulerClient.connect. */
  dial?: (server: HostPort, options: ClientOptions) => Promise<Link>;
}

type Target = string | Array<string | HostPort> | ConnectOptions;

/**
 * Connects to the first server that answers (starting at a random one) and
 * resolves with a client that keeps itself connected. Rejects when none answers
 * within retry.giveUpAfterMs, or at once when a server refuses the token.
 */
export async function connect<M extends TaskTypes<M> = AnyTasks>(target: Target): Promise<Scheduler<M>> {
  const scheduler = new Scheduler<M>(typeof target === "string" ? { servers: [target] } : Array.isArray(target) ? { servers: target } : target);
  try {
    await scheduler.ready();
  } catch (err) {
    await scheduler.close();
    throw err;
  }
  return scheduler;
}

/** How a request may be sent again. */
interface Resend {
  /** Also after a lost connection (idempotent, or keyed), not only after a refusal. */
  afterLoss: boolean;
  /** Not even after a refusal. */
  never?: boolean;
  /** Its answer comes at once (not at a task's end), so a silent server can be timed out. */
  answerBounded: boolean;
}
const QUERY: Resend = { afterLoss: true, answerBounded: true };
const WAITS: Resend = { afterLoss: true, answerBounded: false };
const ONCE: Resend = { afterLoss: false, answerBounded: true };
/** Keyed, so a re-send cannot run it twice: also after a lost reply. */
const KEYED: Resend = { afterLoss: true, answerBounded: true };
/** Not idempotent even on a refusal: sent once, whatever happens. */
const NEVER: Resend = { afterLoss: false, answerBounded: true, never: true };

const closedError = () => new SchedulerError("E_SHUTTING_DOWN", "this client was closed");

function encodePayload(payload: unknown): Uint8Array | undefined {
  return payload instanceof Uint8Array || payload === undefined ? payload : encode(payload);
}

export class Scheduler<M extends TaskTypes<M> = AnyTasks> implements HandleOwner {
  private readonly servers: HostPort[];
  private readonly retry: Required<RetryOptions>;
  private readonly random: () => number;
  private readonly dial: (server: HostPort, options: ClientOptions) => Promise<Link>;
  private readonly linkOptions: ClientOptions;
  private readonly rotation: ServerRotation;
  private current: Link | undefined;
  private dialing: Promise<Link> | undefined;
  /** Set when a connection was dropped: the next dial waits this long (backoff after a full round). */
  private resumeDelayMs = 0;
  private closing = false;
  private readonly sleepers = new Set<() => void>();
  private readonly eventStreams = new Set<TaskEvents>();

  constructor(options: ConnectOptions) {
    this.servers = options.servers.map((s) => (typeof s === "string" ? parseHostPort(s) : s));
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.random = options.random ?? Math.random;
    this.dial = options.dial ?? ((server, o) => SchedulerClient.connect(server, o));
    this.linkOptions = { token: options.token, nodeId: options.nodeId ?? `sdk-${process.pid}`, tls: options.tlsCa === undefined ? undefined : { ca: options.tlsCa } };
    this.rotation = new ServerRotation(this.servers.length, this.random(), this.retry);
  }

  /** Resolves once connected (connect() awaits this). */
  async ready(): Promise<void> {
    await this.connection();
  }

  /** The server in use now ("host:port"), or undefined between connections. */
  get server(): string | undefined {
    if (this.current === undefined || this.current.closed) return undefined;
    const s = this.servers[this.rotation.current]!;
    return `${s.host}:${s.port}`;
  }

  /** Submits a task and resolves with its handle once a coordinator has accepted it (replicated, and logged with --data-dir). */
  async submit<K extends TaskName<M>>(type: K, payload?: PayloadOf<M, K>, options: SubmitOptions = {}): Promise<TaskHandle<ResultOf<M, K>>> {
    const sent = this.keyed(options);
    const bytes = encodePayload(payload);
    const id = await this.retrying((link) => link.submit(type, bytes, sent));
    return new TaskHandle<ResultOf<M, K>>(id, sent.idempotencyKey, this);
  }

  /**
   * Submits many tasks as batch messages (each acknowledged once every task in
   * it is replicated); resolves with their handles in order. Every task gets an
   * idempotency key, so a batch lost with its connection, or a task refused
   * with a retryable code (its shard had no primary for a moment), is sent
   * again without duplicating anything. A task refused for good rejects the
   * call with a BatchSubmitError whose outcomes say which tasks were accepted.
   */
  async submitMany<K extends TaskName<M>>(tasks: Array<{ type: K; payload?: PayloadOf<M, K>; options?: SubmitOptions }>): Promise<Array<TaskHandle<ResultOf<M, K>>>> {
    const keyed = tasks.map((t) => ({ type: t.type as string, payload: encodePayload(t.payload), options: this.keyed(t.options ?? {}) }));
    const outcomes: BatchItemOutcome[] = new Array(keyed.length);
    let waiting = keyed.map((_, i) => i);
    // One budget for the whole call, as for submit(): each round's re-sends do not start a fresh one.
    const giveUpAt = Date.now() + this.retry.giveUpAfterMs;
    for (let round = 0; waiting.length > 0; round++) {
      const sent = waiting;
      const answers = await this.retrying((link) => link.submitBatch(sent.map((i) => keyed[i]!)), KEYED, giveUpAt);
      waiting = [];
      const mayResend = round + 1 < RESENDS_MAX && Date.now() < giveUpAt;
      for (const [j, i] of sent.entries()) {
        const answer = answers[j]!;
        outcomes[i] = answer;
        // submit()'s rule: E_UNAVAILABLE or E_NOT_PRIMARY (a shard between primaries) is sent again; E_QUEUE_FULL and the rest go to the caller.
        if (!answer.ok && mayResend && isErrorCode(answer.code) && nextStep(answer.code, false) !== "reject") waiting.push(i);
      }
      if (waiting.length > 0) await this.pause(backoffDelayMs(round, this.retry.minDelayMs, this.retry.maxDelayMs, this.random()));
    }
    const refused = outcomes.findIndex((o) => !o.ok);
    if (refused >= 0) {
      const first = outcomes[refused] as { code: string; message: string };
      throw new BatchSubmitError(outcomes, { index: refused, code: isErrorCode(first.code) ? first.code : "E_BAD_REQUEST", message: first.message });
    }
    return outcomes.map((o, i) => new TaskHandle<ResultOf<M, K>>((o as { taskId: number }).taskId, keyed[i]!.options.idempotencyKey, this));
  }

  /** Submits a task and waits for it: resolves with its decoded result, rejects with a TaskFailedError. */
  async run<K extends TaskName<M>>(type: K, payload?: PayloadOf<M, K>, options: SubmitOptions = {}): Promise<ResultOf<M, K>> {
    const sent = this.keyed(options);
    const bytes = encodePayload(payload);
    // One round trip normally; after a lost connection the key finds the task again, and we wait for it by id.
    const outcome = await this.retrying((link, resend) => (resend === 0 ? link.run(type, bytes, sent) : link.submit(type, bytes, sent).then((id) => link.wait(id))), WAITS);
    return (await this.settle(outcome)) as ResultOf<M, K>;
  }

  /** A handle for a task submitted earlier (by this or any client). */
  handle<R = unknown>(taskId: number, idempotencyKey = ""): TaskHandle<R> {
    return new TaskHandle<R>(taskId, idempotencyKey, this);
  }

  /** Waits for a task to end: its decoded result, or a TaskFailedError. */
  async result(taskId: number): Promise<unknown> {
    return this.settle(await this.retrying((link) => link.wait(taskId), WAITS));
  }

  /** The task as the coordinator holds it now: state, attempt, every attempt's error, progress. */
  status(taskId: number): Promise<TaskStatus> {
    return this.retrying((link) => link.task(taskId)) as Promise<TaskStatus>;
  }

  async cancel(taskId: number): Promise<TaskState> {
    return (await this.retrying((link) => link.cancel(taskId))) as TaskState;
  }

  /**
   * Creates every task of a DAG at once (or none). Each node goes under a key (the
   * caller's, or a generated one), so a re-send after a lost reply or a refusal (a
   * primary that stepped down may have replicated it first) gets the same ids back
   * instead of a second workflow.
   */
  workflow(tasks: WorkflowTask[]): Promise<number[]> {
    const base = crypto.randomUUID();
    const keyed = tasks.map((t, i) => ({ ...t, idempotencyKey: idempotencyKeyOf(t.idempotencyKey, () => `${base}-${i}`) }));
    return this.retrying((link) => link.workflow(keyed), KEYED);
  }

  deadLetters(offset = 0, limit = 100): Promise<{ tasks: TaskInfo[]; total: number }> {
    return this.retrying((link) => link.deadLetters(offset, limit));
  }

  requeue(taskId: number): Promise<void> {
    return this.retrying((link) => link.requeue(taskId), ONCE);
  }

  /**
   * Never sent twice: a refusal may come from a primary that stepped down after the
   * purge reached a backup, and purging again (all of them, with no ids) would also
   * remove what failed in between. A refusal is the caller's to judge.
   */
  purgeDeadLetters(taskIds: number[] = []): Promise<number> {
    return this.retrying((link) => link.purgeDeadLetters(taskIds), NEVER);
  }

  stats(): Promise<CoordinatorStats | ClusterStats> {
    return this.retrying((link) => link.stats());
  }

  clusterStats(): Promise<ClusterStats> {
    return this.retrying((link) => link.clusterStats());
  }

  /**
   * Task events (completed, failed, dead, cancelled, progress) of every shard, filtered by
   * kind, type, tag or task id: an async iterable with on()/off() listeners. It follows
   * this client across reconnects and failovers, resuming after the last event it handed
   * out (a `gap` event when a primary no longer holds what was missed). `after`: resume
   * after an event id from an earlier stream.
   */
  events(options: EventsOptions = {}): TaskEvents {
    const stream = new TaskEvents(async (filter, after, handlers) => {
      const link = await this.connection();
      return link.subscribe(filter, after, {
        onBatch: handlers.onBatch,
        onEnd: (error) => {
          // A coordinator reached directly that is not (or no longer) primary: another server may be.
          if (error.code === "E_NOT_PRIMARY" && this.servers.length > 1) this.drop(link);
          handlers.onEnd(error);
        },
      });
    }, options, () => this.eventStreams.delete(stream));
    this.eventStreams.add(stream);
    return stream;
  }

  /** Closes the connection and stops reconnecting; requests still waiting reject with E_SHUTTING_DOWN, event streams end. */
  async close(): Promise<void> {
    this.closing = true;
    for (const stream of [...this.eventStreams]) stream.close();
    for (const wake of this.sleepers) wake();
    this.current?.close();
    this.current = undefined;
    await this.dialing?.catch(() => undefined);
  }

  // ------------------------------------------------------------ internals

  private keyed(options: SubmitOptions): SubmitOptions & { idempotencyKey: string } {
    const problem = checkSubmitOptions(options);
    if (problem !== undefined) throw new SchedulerError("E_BAD_REQUEST", problem);
    return { ...options, idempotencyKey: idempotencyKeyOf(options.idempotencyKey, () => crypto.randomUUID()) };
  }

  /** A TASK_DONE as a value or a TaskFailedError with every attempt's error (looked up; best effort). */
  private async settle(outcome: TaskOutcome): Promise<unknown> {
    if (outcome.ok) return decodeResult(outcome.output);
    const info = await this.status(outcome.taskId).catch(() => undefined);
    const errors = (info?.errors ?? []).map((e) => ({ attempt: e.attempt, workerId: e.workerId, at: e.at, code: isErrorCode(e.code) ? e.code : "E_HANDLER", message: e.message }));
    return Promise.reject(new TaskFailedError(outcome.taskId, outcome.code ?? "E_HANDLER", outcome.message ?? "", outcome.attempts, errors));
  }

  /**
   * Sends a request, and again on another connection or after a pause when the
   * re-send rule (nextStep) says so, until retry.giveUpAfterMs. A request that
   * is not re-sent after a lost connection (it may have been done) is re-sent
   * only after a refusal. A server that leaves an immediate request unanswered
   * for retry.answerTimeoutMs (stopped, or half-open) is left like a lost one.
   */
  private async retrying<T>(call: (link: Link, resend: number) => Promise<T>, how: Resend = QUERY, giveUpAt = Date.now() + this.retry.giveUpAfterMs): Promise<T> {
    for (let resend = 0; ; resend++) {
      const link = await this.connection();
      try {
        const answer = call(link, resend);
        return await (how.answerBounded ? this.answerWithin(link, answer) : answer);
      } catch (err) {
        if (this.closing) throw closedError();
        const e = asSchedulerError(err);
        const step = nextStep(e.code, link.closed);
        if (step === "reject" || how.never === true || (!how.afterLoss && link.closed) || resend >= RESENDS_MAX || Date.now() >= giveUpAt) throw e;
        if (step === "failover") this.drop(link);
        else await this.pause(backoffDelayMs(resend, this.retry.minDelayMs, this.retry.maxDelayMs, this.random()));
      }
    }
  }

  /** The answer, or E_UNAVAILABLE after answerTimeoutMs with the connection dropped (its other requests move on too). */
  private answerWithin<T>(link: Link, answer: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const where = this.server ?? "the server";
        this.drop(link);
        reject(new SchedulerError("E_UNAVAILABLE", `no answer from ${where} within ${this.retry.answerTimeoutMs} ms`));
      }, this.retry.answerTimeoutMs);
      answer.then(
        (value) => (clearTimeout(timer), resolve(value)),
        (err: unknown) => (clearTimeout(timer), reject(err)),
      );
    });
  }

  /** The live connection, or the one being dialed. Rejects (never throws) when none can be had. */
  private connection(): Promise<Link> {
    if (this.closing) return Promise.reject(closedError());
    if (this.current !== undefined && !this.current.closed) return Promise.resolve(this.current);
    if (this.current !== undefined) this.drop(this.current); // lost under us; nobody had noticed yet
    if (this.dialing === undefined) {
      const dialing = this.dialAlong().finally(() => {
        if (this.dialing === dialing) this.dialing = undefined;
      });
      this.dialing = dialing;
    }
    return this.dialing;
  }

  /** Leaves a connection (lost, or its coordinator stepped down) and moves the rotation on; once per connection. */
  private drop(link: Link): void {
    if (this.current !== link) return;
    this.current = undefined;
    this.dialing = undefined; // it resolved to this link; the next request dials afresh
    link.onRole = undefined;
    this.resumeDelayMs = this.rotation.failed(this.random());
    link.close();
  }

  /** Dials along the server list, pausing after each full round, until one completes a handshake. */
  private async dialAlong(): Promise<Link> {
    const giveUpAt = Date.now() + this.retry.giveUpAfterMs;
    let delayMs = this.resumeDelayMs;
    this.resumeDelayMs = 0;
    let last: SchedulerError | undefined;
    for (let tries = 0; tries < RESENDS_MAX && Date.now() + delayMs < giveUpAt; tries++) {
      await this.pause(delayMs);
      if (this.closing) throw closedError();
      try {
        return this.adopt(await this.dialOne(this.servers[this.rotation.current]!));
      } catch (err) {
        if (this.closing) throw closedError();
        last = asSchedulerError(err);
        if (nextStep(last.code, true) === "reject") throw last; // a wrong token is wrong on every server
        delayMs = this.rotation.failed(this.random());
      }
    }
    const list = this.servers.map((s) => `${s.host}:${s.port}`).join(", ");
    throw new SchedulerError("E_UNAVAILABLE", `no server answered within ${this.retry.giveUpAfterMs} ms (${list})${last ? `; last: ${last.message}` : ""}`);
  }

  private adopt(link: Link): Link {
    if (this.closing) {
      link.close();
      throw closedError();
    }
    this.rotation.connected();
    this.current = link;
    // A coordinator we talk to directly became a backup: move to another server now rather than
    // on the next E_NOT_PRIMARY. With one server there is nowhere to go; its refusals pause instead.
    link.onRole = (change) => {
      if (!change.primary && this.servers.length > 1) this.drop(link);
    };
    return link;
  }

  /** One dial and handshake, bounded by retry.connectTimeoutMs (a connection that opens late is closed). */
  private dialOne(server: HostPort): Promise<Link> {
    const dialing = this.dial(server, this.linkOptions);
    return new Promise<Link>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new SchedulerError("E_UNAVAILABLE", `${server.host}:${server.port} did not complete a handshake within ${this.retry.connectTimeoutMs} ms`));
        dialing.then((late) => late.close(), () => undefined);
      }, this.retry.connectTimeoutMs);
      dialing.then(
        (link) => (clearTimeout(timer), resolve(link)),
        (err: unknown) => (clearTimeout(timer), reject(err)),
      );
    });
  }

  /** A timer that close() cuts short, so closing never waits out a backoff. */
  private pause(ms: number): Promise<void> {
    if (ms <= 0 || this.closing) return Promise.resolve();
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleepers.add(wake);
    });
  }
}
