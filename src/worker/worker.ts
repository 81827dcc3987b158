// The worker process's main thread: TCP links to coordinators, and N executor
// threads fed through SharedArrayBuffer rings. ASSIGN bodies are copied into a
// ring as they arrived; RESULT bodies come back from the executors' rings and
// are forwarded as they are, so the main thread never re-encodes a task.

import type { Logger } from "../cli/log.ts";
import { Deque } from "../core/deque.ts";
import { shardOfTask } from "../core/task.ts";
import type { NetLimits } from "../net/connection.ts";
import type { HostPort } from "../net/endpoints.ts";
import type { ClientTls } from "../net/tls.ts";
import { Kind, TaskStatus, type Heartbeat, type Hello } from "../protocol/messages.ts";
import { SpscRing } from "../ring/spsc-ring.ts";
import { CoordinatorLink, type LinkOptions } from "../net/coordinator-link.ts";
import { ProtocolError } from "../protocol/errors.ts";
import { readControl, type Reader } from "../protocol/codec.ts";
import { PROTOCOL_VERSION } from "../protocol/messages.ts";
import { followCoordinators, type EtcdSettings } from "../net/etcd-discovery.ts";
import type { BuiltinHandler } from "./builtin-tasks.ts";
import type { ExecutorConfig } from "./executor.ts";
import { startExecutorThread, startInProcessExecutor, type ExecutorControl } from "./executor-start.ts";
import { KeptResults } from "./kept-results.ts";
import { LinkCredit } from "./link-credit.ts";

export interface WorkerConfig {
  /** Served from the start, whatever etcd says. */
  coordinators: HostPort[];
  /** Also serve the coordinators registered in etcd (--etcd). */
  etcd?: EtcdSettings | undefined;
  nodeId: string;
  tags: string[];
  /** Executor threads. */
  threads: number;
  /** Tasks one executor thread holds at once (async handlers overlap). */
  concurrency: number;
  ringBytes: number;
  heartbeatMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  idleWaitMs: number;
  batchMax: number;
  /** Absolute paths of user handler modules (--handlers). */
  handlerModules: string[];
  /** Results kept per shard while it has no primary. */
  resultsWaitingMax: number;
  limits: NetLimits;
  /** Presented in the HELLO: a token with the worker role (when the cluster has tokens). */
  token: string | undefined;
  /** Dial coordinators over TLS, trusting this CA. */
  tls: ClientTls | undefined;
  /** Module path of the executor thread (differs between `bun run` and a compiled binary). */
  executorModule: string | URL;
  /**
   * An in-process worker's handler table (createWorker): its executors run on the
   * main thread, since functions cannot be posted to a thread; handlerModules and
   * executorModule are then unused.
   */
  inProcessHandlers?: Record<string, BuiltinHandler> | undefined;
}

interface Executor {
  readonly control: ExecutorControl;
  readonly tasksIn: SpscRing;
  readonly resultsOut: SpscRing;
  inFlight: number;
  /** ASSIGN bodies the input ring had no room for yet. */
  readonly backlog: Deque<Uint8Array>;
}

/** What drain() left behind when its time ran out: tasks still running, results never handed to a primary. */
export interface DrainReport {
  unfinished: number;
  undelivered: number;
}

export interface WorkerCounters {
  received: number;
  done: number;
  failed: number;
  dropped: number;
  /**
   * ASSIGNs not run: from a link that was not (or no longer) its shard's primary, or below the
   * shard's highest epoch seen, or with every slot busy and the tasks waiting for one at their limit.
   */
  refused: number;
  /** ASSIGNs that arrived with every slot busy (credit moving between coordinators) and waited for one. */
  held: number;
}

/** Refused ASSIGNs are logged at most this often (a deposed primary may send many at once). */
const REFUSED_LOG_INTERVAL_MS = 1000;

export class WorkerNode {
  readonly counters: WorkerCounters = { received: 0, done: 0, failed: 0, dropped: 0, refused: 0, held: 0 };
  /** Each link's share of this worker's slots: announced in its HELLO and CREDIT messages. */
  private readonly credit: LinkCredit;
  /**
   * ASSIGNs that came while every slot was busy: a coordinator leased under credit that
   * had just moved to another. They run as slots free, so the worker never runs more
   * than its slots. Bounded like the results kept for a failover.
   */
  private readonly waitingForSlot = new Deque<Uint8Array>();
  /** Tasks of waitingForSlot cancelled before they started (at most its length). */
  private readonly cancelledWhileWaiting = new Set<number>();
  private readonly executors: Executor[] = [];
  private readonly links: CoordinatorLink[] = [];
  /** Where a result goes: the live link that serves the task's shard. */
  private readonly linkByShard = new Map<number, CoordinatorLink>();
  /**
   * Per shard, the highest epoch any link announced as primary (WELCOME or ROLE),
   * kept after that link is gone: the fence below which a coordinator is a deposed
   * primary whose ASSIGNs are not run (it may not know yet, e.g. resumed from a pause).
   */
  private readonly primaryEpochSeen = new Map<number, number>();
  private refusedLoggedAt = 0;
  private refusedSinceLog = 0;
  private linkOptions: LinkOptions | undefined;
  private discovery: { close(): void } | undefined;
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  /** Enough to cover what a primary can lose in flight (a replication round trip's worth, and then some). */
  private get recentResultsMax(): number {
    return Math.max(this.slots, 1024);
  }
  private readonly kept: KeptResults;
  /** Tasks on the executors now: heartbeats name them so their leases are extended. */
  private readonly runningTasks = new Set<number>();
  /** Names this worker in every coordinator's leases, across reconnects and failovers. */
  readonly workerId = 1 + Math.floor(Math.random() * 2 ** 47);
  /** The task types the executors have handlers for (known once they started): announced in the HELLO. */
  types: readonly string[] = [];
  private stopped = false;
  /** Set by drain(): links that (re)connect hear DRAIN too. */
  private draining = false;

  constructor(
    readonly config: WorkerConfig,
    private readonly log: Logger,
    /** Called when the worker cannot go on (an executor thread died). */
    private readonly onFatal: (err: Error) => void = () => {},
  ) {
    this.credit = new LinkCredit(this.slots);
    this.kept = new KeptResults(() => this.recentResultsMax, config.resultsWaitingMax, () => this.counters.dropped++);
  }

  get slots(): number {
    return this.config.threads * this.config.concurrency;
  }

  /** Coordinator links up now and configured, for /readyz. */
  get linksUp(): { up: number; total: number } {
    return { up: this.links.filter((l) => l.up).length, total: this.links.length };
  }

  get running(): number {
    let n = 0;
    for (const e of this.executors) n += e.inFlight;
    return n;
  }

  /** Starts the executor threads, then (once all are running) the coordinator links. Rejects if a thread fails to start. */
  async start(): Promise<void> {
    const ready: Promise<string[]>[] = [];
    for (let i = 0; i < this.config.threads; i++) {
      const { executor, started } = this.spawnExecutor(i);
      this.executors.push(executor);
      ready.push(started);
    }
    // Every thread loads the same modules, so each knows the same types; the coordinators lease only those.
    this.types = (await Promise.all(ready))[0] ?? [];
    this.linkOptions = {
      hello: {
        role: "worker", version: PROTOCOL_VERSION, nodeId: this.config.nodeId, workerId: this.workerId, slots: 0,
        tags: this.config.tags, types: [...this.types], token: this.config.token,
      },
      limits: this.config.limits,
      tls: this.config.tls,
      reconnectMinMs: this.config.reconnectMinMs,
      reconnectMaxMs: this.config.reconnectMaxMs,
    };
    for (const address of this.config.coordinators) this.addCoordinator(address);
    if (this.config.etcd !== undefined) {
      this.discovery = followCoordinators(this.config.etcd, this.config.coordinators, this.log, { add: (a) => this.addCoordinator(a), remove: (a) => this.removeCoordinator(a) });
    }
    this.heartbeatTimer = setInterval(() => {
      this.rebalanceCredit();
      const beat: Heartbeat = { running: this.running, done: this.counters.done, failed: this.counters.failed, taskIds: [] };
      for (const link of this.links) {
        beat.taskIds = this.runningOnShard(link.shard);
        link.sendControl(Kind.HEARTBEAT, beat);
      }
    }, this.config.heartbeatMs);
  }

  /** Dials a coordinator and serves it with a share of the worker's slots (rebalanceCredit). A known address is left as it is. */
  addCoordinator(address: HostPort): void {
    const base = this.linkOptions;
    if (base === undefined) throw new Error("addCoordinator before start()");
    if (this.stopped || this.linkAt(address) !== undefined) return;
    // Each (re)connection announces the link's current share.
    // A draining worker takes nothing new, on a link that reconnects meanwhile too.
    const hello = (): Hello => ({ ...(base.hello as Hello), slots: this.draining ? 0 : this.credit.forHello(link) });
    const link: CoordinatorLink = new CoordinatorLink(address, { ...base, hello }, this.log, {
      onMessage: (l, kind, r) => {
        if (kind === Kind.ASSIGN) return this.accept(l, r);
        if (kind === Kind.ABORT) return this.abort(readControl<{ taskId?: unknown }>(r));
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from coordinator ${l.label}`);
      },
      onReadEnd: () => this.publishTasks(),
      onUp: (l) => this.linkChanged(l),
      onRole: (l) => this.linkChanged(l),
      onDown: (l) => this.linkChanged(l),
    });
    this.links.push(link);
    this.rebalanceCredit();
    link.connect();
  }

  private linkChanged(link: CoordinatorLink): void {
    if (this.draining && link.up) link.sendControl(Kind.DRAIN, {}); // reconnected during drain(): it must not assign either
    // A closed link leases nothing more here: what it was told no longer holds slots (its next HELLO says anew).
    if (!link.up) this.credit.down(link);
    this.roleChanged(link);
    this.rebalanceCredit();
  }

  /**
   * Splits the slots among the links by demand (core/credit-split.ts): a coordinator
   * not yet heard from may be a primary and gets a share; one known not to lease here
   * (a backup, a deposed primary, a link that is down) gets none. A link whose share
   * changed and is up hears it in a CREDIT; one that is down hears it in its next HELLO.
   */
  private rebalanceCredit(): void {
    const usedByShard = new Map<number, number>();
    for (const id of this.runningTasks) {
      const shard = shardOfTask(id);
      usedByShard.set(shard, (usedByShard.get(shard) ?? 0) + 1);
    }
    this.credit.rebalance(this.links, (l) => ({
      eligible: l.shard < 0 || (l.up && this.mayAssign(l)),
      used: l.shard >= 0 && this.linkByShard.get(l.shard) === l ? (usedByShard.get(l.shard) ?? 0) : 0,
    }));
  }

  /**
   * Stops serving a coordinator (gone from etcd). Tasks it assigned keep
   * running; their results wait for the shard's next primary, as after a failover.
   */
  removeCoordinator(address: HostPort): void {
    const link = this.linkAt(address);
    if (link === undefined) return;
    this.links.splice(this.links.indexOf(link), 1);
    this.credit.forget(link);
    link.close();
    this.roleChanged(link);
    this.rebalanceCredit();
    this.log.info("coordinator removed", { coordinator: link.label, shard: link.shard });
  }

  private linkAt(address: HostPort): CoordinatorLink | undefined {
    return this.links.find((l) => l.address.host === address.host && l.address.port === address.port);
  }

  /**
   * Graceful stop (SIGTERM, SDK close()): tell every coordinator to send nothing
   * new, let running tasks finish, and deliver their results, those kept for a
   * shard between primaries included (at most `timeoutMs` for all of it), then
   * stop. Whatever is still running then is retried elsewhere when the links
   * close; results still undelivered are reported (their tasks are retried too).
   */
  async drain(timeoutMs: number): Promise<DrainReport> {
    this.discovery?.close(); // a coordinator found from now on would not hear DRAIN and would assign work
    this.discovery = undefined;
    this.draining = true;
    for (const link of this.links) link.sendControl(Kind.DRAIN, {});
    const deadline = Date.now() + timeoutMs;
    const busy = () => this.running > 0 || this.kept.waitingCount > 0 || this.links.some((l) => l.backlogBytes > 0);
    while (busy() && Date.now() < deadline) await Bun.sleep(10);
    const report = { unfinished: this.running, undelivered: this.kept.waitingCount };
    if (report.undelivered > 0) this.log.warn("results undelivered at stop: their tasks run again elsewhere", report);
    else this.log.info("drained", report);
    this.stop();
    return report;
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    this.discovery?.close();
    for (const link of this.links) link.close();
    for (const e of this.executors) e.control.terminate();
  }

  private spawnExecutor(index: number): { executor: Executor; started: Promise<string[]> } {
    const rings = { tasksIn: SpscRing.create(this.config.ringBytes), resultsOut: SpscRing.create(this.config.ringBytes) };
    const executorConfig: ExecutorConfig = {
      tasksIn: rings.tasksIn.buffer, resultsOut: rings.resultsOut.buffer, idleWaitMs: this.config.idleWaitMs, batchMax: this.config.batchMax,
    };
    const inProcess = this.config.inProcessHandlers;
    const onProgress = (p: { taskId: number; attempt: number; value: number }) => this.reportProgress(p);
    const { control, started } = inProcess === undefined
      ? startExecutorThread(index, executorConfig, this.config.executorModule, this.config.handlerModules, this.log, onProgress, (err) => this.onFatal(err))
      : startInProcessExecutor(executorConfig, inProcess, onProgress);
    const executor: Executor = { control, ...rings, inFlight: 0, backlog: new Deque() };
    void this.forwardResults(executor);
    return { executor, started };
  }

  /**
   * Some link's role changed, came up or went down: the shard's primary is the
   * live link that says primary with the highest epoch, and not below the
   * highest epoch ever announced (a stale primary may still say so for a moment,
   * or again after a pause). Results go to it only; one that appears gets what
   * waited for it, and the recent results again, since the old one may have died
   * before replicating them; it drops those it already has by lease attempt.
   */
  private roleChanged(changed: CoordinatorLink): void {
    const shard = changed.shard;
    if (shard < 0) return; // never welcomed: it has said nothing yet
    // Every coordinator of the shard gone at once: a shard restarted without its data starts over at
    // epoch 1, and an old fence would refuse its work for good. A deposed primary cannot slip through
    // here unless it alone reconnects first, and in etcd mode it fences itself anyway.
    if (!this.links.some((l) => l.up && l.shard === shard)) this.primaryEpochSeen.delete(shard);
    const fence = this.raiseFence(changed);
    let best: CoordinatorLink | undefined;
    for (const l of this.links) {
      if (l.up && l.primary && l.shard === shard && l.epoch >= fence && (best === undefined || l.epoch > best.epoch)) best = l;
    }
    const current = this.linkByShard.get(shard);
    if (best === current) return;
    if (best === undefined) {
      this.linkByShard.delete(shard);
      return;
    }
    this.linkByShard.set(shard, best);
    const resend = this.kept.takeForNewPrimary(shard);
    for (const body of resend) if (!best.sendRaw(Kind.RESULT, body)) this.counters.dropped++;
    best.flushSoon();
    if (resend.length > 0) this.log.info("results resent to new primary", { shard, results: resend.length, primary: best.label, epoch: best.epoch });
  }

  /** Records the epoch of a link that says primary; returns the shard's fence. */
  private raiseFence(link: CoordinatorLink): number {
    const fence = this.primaryEpochSeen.get(link.shard) ?? 0;
    if (!link.up || !link.primary) return fence;
    // Said once per announcement, not per task: the refusals themselves are only counted and sampled at debug.
    const deposed = (l: CoordinatorLink, epochSeen: number) =>
      this.log.warn("deposed primary: its assignments are refused", { coordinator: l.label, shard: l.shard, epoch: l.epoch, epochSeen });
    if (link.epoch < fence) deposed(link, fence);
    if (link.epoch <= fence) return fence;
    this.primaryEpochSeen.set(link.shard, link.epoch);
    for (const l of this.links) if (l.up && l.primary && l.shard === link.shard && l.epoch < link.epoch) deposed(l, link.epoch);
    return link.epoch;
  }

  /**
   * Only the shard's current primary hands out work: a link that says primary,
   * at no lower epoch than any primary of its shard announced, and still served.
   */
  private mayAssign(link: CoordinatorLink): boolean {
    return link.primary && link.epoch >= (this.primaryEpochSeen.get(link.shard) ?? 0) && this.links.includes(link);
  }

  /** An ASSIGN not run: counted, logged at debug at most once a REFUSED_LOG_INTERVAL_MS. Its lease ends on the coordinator that sent it. */
  private refuse(link: CoordinatorLink, taskId: number): void {
    this.counters.refused++;
    this.refusedSinceLog++;
    const now = Date.now();
    if (now - this.refusedLoggedAt < REFUSED_LOG_INTERVAL_MS) return;
    this.log.debug("assignment refused", {
      coordinator: link.label, shard: link.shard, epoch: link.epoch, primary: link.primary, served: this.links.includes(link),
      epochSeen: this.primaryEpochSeen.get(link.shard) ?? 0, taskId, refusedSinceLastLog: this.refusedSinceLog,
    });
    this.refusedLoggedAt = now;
    this.refusedSinceLog = 0;
  }

  private reportProgress(p: { taskId: number; attempt: number; value: number }): void {
    this.linkByShard.get(shardOfTask(p.taskId))?.sendControl(Kind.PROGRESS, { taskId: p.taskId, attempt: p.attempt, progress: p.value });
  }

  /** A cancelled task: every executor hears it (cancels are rare); the one running it aborts its handler. */
  private abort(msg: { taskId?: unknown }): void {
    const taskId = Number(msg.taskId);
    if (!this.runningTasks.has(taskId)) return;
    // One still waiting for a slot never starts (the coordinator has already ended its lease).
    for (const body of this.waitingForSlot) {
      if (new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true) === taskId) this.cancelledWhileWaiting.add(taskId);
    }
    for (const e of this.executors) e.control.abort(taskId);
  }

  private runningOnShard(shard: number): number[] {
    const ids: number[] = [];
    for (const id of this.runningTasks) if (shardOfTask(id) === shard) ids.push(id);
    return ids;
  }

  /** One ASSIGN body (r on it) from the shard's primary: to the least busy executor's ring (or its backlog when the ring is full). */
  private accept(link: CoordinatorLink, r: Reader): void {
    if (r.end - r.pos < 8) throw new ProtocolError("E_BAD_FRAME", "ASSIGN shorter than its task id");
    if (!this.mayAssign(link)) return this.refuse(link, r.view.getFloat64(r.pos, true));
    this.counters.received++;
    const taskId = r.view.getFloat64(r.pos, true);
    if (this.running < this.slots) {
      this.runningTasks.add(taskId);
      return this.toExecutor(r.bytes, r.pos, r.end);
    }
    if (this.waitingForSlot.length >= this.recentResultsMax) {
      this.counters.refused++; // its lease expires on the coordinator and the task is retried
      return;
    }
    this.runningTasks.add(taskId); // named in heartbeats while it waits, so its lease holds
    this.counters.held++;
    this.waitingForSlot.push(r.bytes.slice(r.pos, r.end));
  }

  /** To the least busy executor's ring (or its backlog when the ring is full). */
  private toExecutor(bytes: Uint8Array, start: number, end: number): void {
    let target = this.executors[0]!;
    for (const e of this.executors) if (e.inFlight < target.inFlight) target = e;
    target.inFlight++;
    if (target.backlog.length > 0 || !target.tasksIn.tryWriteRange(bytes, start, end)) target.backlog.push(bytes.slice(start, end));
  }

  /** Slots freed: tasks that waited for one go to the executors, oldest first. */
  private runWaiting(): void {
    while (this.waitingForSlot.length > 0 && this.running < this.slots) {
      const body = this.waitingForSlot.shift()!;
      const taskId = new DataView(body.buffer, body.byteOffset, 8).getFloat64(0, true);
      if (this.cancelledWhileWaiting.delete(taskId)) {
        this.runningTasks.delete(taskId);
        continue;
      }
      this.toExecutor(body, 0, body.length);
    }
    this.publishTasks();
  }

  private publishTasks(): void {
    for (const e of this.executors) e.tasksIn.publish();
  }

  /** Per executor: wait for results, forward each batch to its coordinator. */
  private async forwardResults(e: Executor): Promise<void> {
    const touched = new Set<CoordinatorLink>();
    // The ring hands out views of its one buffer: one DataView over it serves every record.
    let view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));
    const forward = (data: Uint8Array, start: number, length: number) => {
      e.inFlight--;
      if (view.buffer !== data.buffer || view.byteOffset !== data.byteOffset) view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const taskId = view.getFloat64(start, true);
      this.runningTasks.delete(taskId);
      if (data[start + 10] === TaskStatus.OK) this.counters.done++;
      else this.counters.failed++;
      const shard = shardOfTask(taskId);
      const link = this.linkByShard.get(shard);
      if (link === undefined || !link.sendRawRange(Kind.RESULT, data, start, start + length)) this.kept.hold(shard, data.subarray(start, start + length));
      else {
        touched.add(link);
        this.kept.sent(shard, data, start, start + length);
      }
    };
    while (!this.stopped) {
      const n = e.resultsOut.drain(forward);
      if (n > 0) {
        for (const link of touched) link.flushSoon();
        touched.clear();
        this.refill(e);
        if (this.waitingForSlot.length > 0) this.runWaiting();
        // Yield a whole turn so sockets and timers run even under a steady stream of results.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      const wait = e.resultsOut.waitAsync(1000);
      if (!wait.ready) await wait.promise;
    }
  }

  /** Moves backlogged tasks into the ring as the executor frees room. */
  private refill(e: Executor): void {
    while (e.backlog.length > 0 && e.tasksIn.tryWrite(e.backlog.peek()!)) e.backlog.shift();
    e.tasksIn.publish();
  }
}
