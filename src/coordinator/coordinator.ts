// The coordinator process shell: TCP in, the pure Scheduler in the middle,
// effects out. On the primary every input becomes a log entry that is applied
// here and streamed to the backups (event-log.ts); replies that tell a client
// something happened are held until every in-sync backup has the entry
// (synchronous replication). Backups apply the same entries (backup-log.ts)
// and answer nothing but reads. Roles change through a RoleControl: static
// peers (peers.ts) or an etcd-led replica group (etcd-control.ts). Requests
// are in commands.ts, worker effects in worker-links.ts, what backups send in
// backup-inputs.ts, disk in data-dir.ts.

import type { Logger } from "../cli/log.ts";
import { Scheduler } from "../core/scheduler.ts";
import { HeldHeartbeats, type HeldHeartbeat } from "../core/held-heartbeats.ts";
import type { Task, Watcher } from "../core/task.ts";
import { authorizeKind, type Grants } from "../net/auth.ts";
import type { Connection, ConnectionHandler } from "../net/connection.ts";
import { formatHostPort, listen, type Listener } from "../net/endpoints.ts";
import { readControl, Reader, writeControl } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  Kind, KIND_NAMES, PROTOCOL_VERSION,
  type CoordinatorStats, type Hello, type Role, type Welcome,
} from "../protocol/messages.ts";
import { applyEntry, encodeRunning, encodeWorkerCredit, encodeWorkerJoined, Ev, EventLog, type ApplyResult, type LogBatch } from "./event-log.ts";
import { Peers } from "./peers.ts";
import { EtcdControl } from "./etcd-control.ts";
import { processEtcdControl, processIsrReplicaSet } from "./etcd-mode.ts";
import type { Replicas, ReplicationRole, RoleControl, RoleEvents } from "./role-control.ts";
import { TaskObservations } from "./task-observations.ts";
import { EventFeed } from "./event-feed.ts";
import { StallDetector } from "../core/stall-detector.ts";
import { replicate, type ReplicationStep } from "../core/replication-step.ts";
import { Commands } from "./commands.ts";
import { announceRole, HeldReplies } from "./held-replies.ts";
import { coordinatorStats, readinessOf, replicationStats } from "./coordinator-stats.ts";
import type { Readiness } from "../metrics/metrics-server.ts";
import { ReplicaSet } from "./replica-set.ts";
import { writeAppend } from "./replication-codec.ts";
import type { WriteAheadLog } from "./wal.ts";
import { openDataDir } from "./recovery.ts";
import type { CoordinatorConfig } from "./config.ts";
import { BackupLog } from "./backup-log.ts";
import { WorkerLinks } from "./worker-links.ts";
import { WorkerInputs } from "./worker-inputs.ts";
import { BackupInputs } from "./backup-inputs.ts";
import { checkHello, type WorkerShape } from "./request-shapes.ts";
import { DataDir } from "./data-dir.ts";

export type { CoordinatorConfig } from "./config.ts";

const EMPTY = new Uint8Array(0);

export class Coordinator implements ConnectionHandler {
  scheduler: Scheduler;
  private listener: Listener | undefined;
  private readonly connections = new Map<number, Connection>();
  /** Runtime only: which connection each worker id is on now (never replicated). */
  private readonly workers: WorkerLinks;
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private readonly startedAt = Date.now();
  private readonly observed: TaskObservations;
  /** Results, heartbeats, drains, credit and progress from workers (worker-inputs.ts). */
  private readonly workerInputs: WorkerInputs;
  /** Set by shutdown(): new submissions are refused while the backups catch up. */
  private stopping = false;
  private eventLog = new EventLog();
  private readonly entryReader = new Reader();
  private replicas: Replicas;
  private readonly held = new HeldReplies();
  /** Primary: heartbeats taken but not logged yet (held-heartbeats.ts). */
  private readonly heartbeats = new HeldHeartbeats();
  /** Who decides this node's role: static peers, or etcd. */
  private readonly control: RoleControl;
  /** The backup side of replication: what this node holds of the primary's log. */
  private readonly backup: BackupLog;
  /** --data-dir: the write-ahead log and snapshot, and whether a write to them failed. */
  private disk: DataDir;
  private readonly commands: Commands;
  private readonly stalls: StallDetector;
  /** Primary: task events for subscribers (SUBSCRIBE), delivered as their entries commit. */
  private readonly feed: EventFeed;
  /** Primary: sync requests and acknowledgements from backups, and the snapshots streamed to them (backup-inputs.ts). */
  private readonly backupInputs: BackupInputs;

  constructor(
    readonly config: CoordinatorConfig,
    private readonly log: Logger,
    /** The data directory failed a write or sync: the process must stop (data-dir.ts). */
    private readonly fatal: () => void = () => process.exit(1),
  ) {
    this.scheduler = new Scheduler(config.scheduler);
    this.disk = this.dataDir(undefined);
    this.workers = new WorkerLinks(config.workerSlotsMax, log);
    this.feed = new EventFeed(config.scheduler.shard);
    this.observed = new TaskObservations(log, (task, progress) => this.feed.progress(task, progress, Date.now(), this.eventLog.lastIndex));
    this.workerInputs = new WorkerInputs({
      isPrimary: () => this.role === "primary",
      scheduler: () => this.scheduler,
      record: (type, subject, body, bodyStart, bodyEnd) => void this.record(type, subject, body, bodyStart, bodyEnd),
      heartbeat: (beat) => this.logHeartbeats(this.heartbeats.hold(beat)),
    }, this.workers, this.observed, config.workerSlotsMax, log);
    this.stalls = new StallDetector(config.tickMs, performance.now());
    const self = this;
    this.backup = new BackupLog({
      config, log,
      get control() {
        return self.control;
      },
      get scheduler() {
        return self.scheduler;
      },
      set scheduler(scheduler: Scheduler) {
        self.scheduler = scheduler;
      },
      get disk() {
        return self.disk;
      },
    });
    this.replicas = new ReplicaSet(config.backupTimeoutMs, log);
    this.backupInputs = new BackupInputs({
      mayServe: () => this.role === "primary" && !this.disk.failed,
      refuseNotPrimary: (conn, requestId) => this.refuseNotPrimary(conn, requestId),
      pump: () => this.pump(),
      epoch: () => this.epoch,
      lastIndex: () => this.eventLog.lastIndex,
      scheduler: () => this.scheduler,
      replicas: () => this.replicas,
    }, config.snapshotBytesMax, log);
    const events: RoleEvents = {
      promote: (epoch) => this.promote(epoch),
      follow: () => this.backup.following(),
      stepDown: (reason) => this.stepDown(reason),
      onReplication: (kind, r) => this.backup.apply(kind, r),
      onReplicationReadEnd: () => this.backup.acknowledge(),
    };
    this.control = config.etcd !== undefined ? processEtcdControl(config, config.etcd, log, events) : new Peers(config, log, events);
    this.commands = new Commands({
      isPrimary: () => this.role === "primary",
      refuseNotPrimary: (conn, requestId) => this.refuseNotPrimary(conn, requestId),
      record: (type, subject, body, bodyStart, bodyEnd) => this.record(type, subject, body, bodyStart, bodyEnd),
      replyWhenCommitted: (conn, requestId, body) =>
        this.held.hold({ index: this.eventLog.lastIndex, conn, kind: Kind.REPLY, requestId, taskId: 0, status: 0, attempts: 0, output: EMPTY, body }),
      submittedWhenCommitted: (conn, requestId, taskId, quiet) => {
        this.held.hold({ index: this.eventLog.lastIndex, conn, kind: Kind.SUBMITTED, requestId, taskId, status: 0, attempts: 0, output: EMPTY, quiet });
        if (quiet) conn.idle.startWait(); // it waits for the task to end: not idle meanwhile (holdDone ends the wait)
      },
      batchSubmittedWhenCommitted: (conn, requestId, outcomes) =>
        this.held.hold({ index: this.eventLog.lastIndex, conn, kind: Kind.SUBMITTED_BATCH, requestId, taskId: 0, status: 0, attempts: 0, output: EMPTY, outcomes }),
      handingOver: () => (this.stopping ? `${this.config.nodeId} is handing over; retry` : undefined),
      scheduler: () => this.scheduler,
      progressOf: (taskId) => this.observed.progressOf(taskId),
    }, config.scheduler.shard, config.payloadBytesMax);
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  get role(): ReplicationRole {
    return this.control.role;
  }

  get epoch(): number {
    return this.control.epoch;
  }

  /** For /readyz: a primary that may accept submissions, or a backup holding the primary's state. */
  readiness(): Readiness {
    return readinessOf(this.control, this.stopping, this.config.scheduler.shard, performance.now());
  }

  start(): void {
    this.recover();
    this.listener = listen(this.config.host, this.config.port, this, this.config.limits, (conn) => this.connections.set(conn.id, conn), this.config.tls.server);
    // -p 0: what etcd tells the others is the port we got.
    if (this.config.advertise.endsWith(":0")) this.config.advertise = formatHostPort(this.config.host, this.port);
    this.tickTimer = setInterval(() => this.onTick(), this.config.tickMs);
    this.log.info("listening", { host: this.config.host, port: this.port, shard: this.config.scheduler.shard, nodeId: this.config.nodeId, peers: this.config.peers.length });
    this.control.start(Date.now());
  }

  /**
   * Graceful stop (SIGTERM): a primary with an in-sync backup refuses new
   * submissions (E_SHUTTING_DOWN, retryable), waits until every entry is
   * acknowledged (at most backupTimeoutMs), releases every held reply, tells
   * the backups to take over at once (HANDOVER), then stops.
   */
  async shutdown(): Promise<void> {
    if (this.role === "primary" && this.replicas.inSyncCount > 0) {
      this.stopping = true;
      this.pump();
      const deadline = Date.now() + this.config.backupTimeoutMs;
      while (this.replicas.committedIndex < this.eventLog.lastIndex && Date.now() < deadline) {
        await Bun.sleep(5);
        this.pump();
      }
      this.replicas.broadcast((w) => writeControl(w, Kind.HANDOVER, { epoch: this.epoch }));
      this.log.info("handed over", { epoch: this.epoch, committedIndex: this.replicas.committedIndex, lastIndex: this.eventLog.lastIndex });
      for (const conn of this.connections.values()) conn.flush();
      await Bun.sleep(20); // let the kernel take the last bytes before the sockets close
    }
    // etcd mode: the leader key goes with the lease, so an in-sync backup campaigns at once.
    await this.control.resign?.();
    this.stop();
  }

  /** With --data-dir: the state the last run made durable, before anything else happens. */
  private recover(): void {
    if (this.config.dataDir === "") return;
    const opened = openDataDir(this.config, this.log, this.scheduler);
    const recovered = opened.recovered;
    this.disk = this.dataDir(opened.wal);
    this.scheduler = opened.scheduler;
    this.backup.appliedIndex = recovered.index;
    this.eventLog = new EventLog(recovered.index);
    this.control.recovered(recovered.epoch, recovered.index);
    if (opened.setAsideTo !== undefined) this.control.rejoinFromPeer?.();
    this.log.info("recovered", { dataDir: this.config.dataDir, epoch: recovered.epoch, index: recovered.index, tasks: this.scheduler.queuedCount + this.scheduler.leasedTotal, logBatches: recovered.batches.length });
  }

  private dataDir(wal: WriteAheadLog | undefined): DataDir {
    return new DataDir(wal, this.config.dataDir, this.log, () => {
      this.control.stop();
      this.fatal();
    });
  }

  stop(): void {
    clearInterval(this.tickTimer);
    this.disk.close();
    this.control.stop();
    this.replicas.closeAll("coordinator stopping");
    this.listener?.stop();
    for (const conn of this.connections.values()) conn.close("coordinator stopping");
  }

  // ------------------------------------------------------------ inputs

  onMessage(conn: Connection, kind: number, r: Reader): void {
    const role = conn.state.role as Role | undefined;
    if (role === undefined) {
      if (kind !== Kind.HELLO) throw new ProtocolError("E_BAD_HELLO", `first message must be HELLO, got kind ${kind}`);
      return this.hello(conn, readControl<Hello>(r));
    }
    authorizeKind(conn.state.grants as Grants, kind, KIND_NAMES[kind] ?? `kind ${kind}`);
    if (this.workerInputs.handles(kind)) return this.workerInputs.message(conn, role, kind, r);
    if (this.backupInputs.handles(kind)) return this.backupInputs.message(conn, role, kind, r);
    switch (kind) {
      case Kind.SUBMIT:
        return this.commands.submit(conn, r);
      case Kind.SUBMIT_BATCH:
        return this.commands.submitBatch(conn, r);
      case Kind.STATS_REQUEST: {
        const req = readControl<{ requestId?: unknown }>(r);
        writeControl(conn.writer, Kind.STATS, this.stats(Number(req.requestId) || 0));
        conn.queueFlush();
        return;
      }
      case Kind.TASK_QUERY:
        return this.commands.taskQuery(conn, readControl<{ requestId?: unknown; taskId?: unknown; idempotencyKey?: unknown }>(r));
      case Kind.CANCEL:
      case Kind.WATCH:
      case Kind.WORKFLOW:
      case Kind.DLQ_REQUEUE:
      case Kind.DLQ_PURGE:
      case Kind.PARENT_ENDED: {
        const q = readControl<Record<string, unknown>>(r);
        return this.commands.answer(conn, kind, q);
      }
      case Kind.SUBSCRIBE:
      case Kind.UNSUBSCRIBE:
        return this.feed.message(conn, kind, readControl<Record<string, unknown>>(r), Date.now());
      case Kind.FOREIGN_WAITS:
        return this.commands.foreignWaits(conn, readControl<{ requestId?: unknown }>(r));
      case Kind.DLQ_LIST:
        return this.commands.deadLetters(conn, readControl<{ requestId?: unknown; offset?: unknown; limit?: unknown }>(r));
      case Kind.ERROR: {
        const e = readControl<{ code?: unknown; message?: unknown }>(r);
        this.log.warn("peer reported an error", { peer: conn.state.nodeId, role, code: e.code, message: e.message });
        return;
      }
      default:
        throw new ProtocolError("E_BAD_FRAME", `unexpected message kind ${kind} from a ${role}`);
    }
  }

  onReadEnd(): void {
    this.pump();
  }

  onClose(conn: Connection, reason: string): void {
    this.connections.delete(conn.id);
    this.backupInputs.snapshots.remove(conn);
    this.feed.closed(conn);
    this.replicas.remove(conn, performance.now(), reason);
    const workerId = this.workers.lost(conn, reason);
    if (workerId === undefined) return;
    if (this.role === "primary" && this.scheduler.worker(workerId) !== undefined) {
      this.record(Ev.WORKER_LEFT, workerId);
      this.pump();
    }
  }

  /** Each tick and pump: after a stall (stall-detector.ts), the replicas' lag clocks move on by it. */
  private noticeStall(monotonic: number): void {
    const gapMs = this.stalls.active(monotonic);
    if (gapMs > 0 && this.role === "primary") {
      this.log.warn("this process stood still; replicas' lag clocks start over", { stalledMs: Math.round(gapMs) });
      this.replicas.stalled?.(monotonic, gapMs);
    }
  }

  private onTick(): void {
    if (this.disk.failed) return; // stopping (data-dir.ts): backups must not hear it is alive
    this.noticeStall(performance.now());
    const now = Date.now();
    if (this.role === "primary") {
      // A tick that would change nothing is not logged: an idle primary would write (and with
      // --data-dir fsync) one every tickMs. Backups still hear from it each tick, by an APPEND of
      // no entries, which is how they know it is alive (peers.ts).
      const lastIndex = this.eventLog.lastIndex;
      if (this.scheduler.tickWouldChange(now)) {
        this.logHeartbeats(this.heartbeats.take()); // held ones may keep a worker or a lease alive
        if (this.scheduler.tickWouldChange(now)) this.record(Ev.TICK, 0);
      }
      this.pump();
      this.backupInputs.snapshots.pump(); // a backup's socket that was full may take the next part now
      if (this.eventLog.lastIndex === lastIndex) this.replicas.broadcast((w) => writeAppend(w, this.epoch, lastIndex + 1, 0, EMPTY, now));
    }
    this.control.tick(now);
  }

  private hello(conn: Connection, hello: Hello): void {
    conn.state.grants = checkHello(hello, this.config.tokens, this.config.scheduler.shard);
    conn.handshakeDone(hello.role);
    conn.state.role = hello.role;
    conn.state.nodeId = String(hello.nodeId ?? "");
    if (hello.role === "worker") {
      const worker = this.workers.joined(conn, hello);
      if (this.role === "primary") this.registerWorker(worker);
    }
    const welcome: Welcome = {
      role: "coordinator", version: PROTOCOL_VERSION, nodeId: this.config.nodeId,
      shard: this.config.scheduler.shard, epoch: this.epoch, primary: this.role === "primary",
      index: this.role === "primary" ? this.eventLog.lastIndex : this.backup.appliedIndex,
    };
    writeControl(conn.writer, Kind.WELCOME, welcome);
    conn.queueFlush();
  }

  /**
   * Primary: a connected worker enters the scheduler. One it knows already (a
   * reconnect, or a lease holder from before a failover) keeps its leases; its
   * next heartbeat says which of them are still running.
   */
  private registerWorker(w: WorkerShape): void {
    const known = this.scheduler.worker(w.workerId);
    if (known === undefined) this.record(Ev.WORKER_JOINED, w.workerId, encodeWorkerJoined(w.slots, w.tags, w.types));
    // Its credit may have moved while it was away (it serves other coordinators too).
    else if (known.slots !== w.slots) this.record(Ev.WORKER_CREDIT, w.workerId, encodeWorkerCredit(w.slots));
  }

  /** Requests that change state: logged like every input; the answer waits for the commit. */
  private refuseNotPrimary(conn: Connection, requestId: number): void {
    const primary = this.control.primaryLabel;
    conn.sendError(requestId, "E_NOT_PRIMARY", `${this.config.nodeId} is a ${this.role} of shard ${this.config.scheduler.shard}${primary ? `; the primary is ${primary}` : ""}`);
  }

  // ------------------------------------------------------------ primary: log and effects

  /** Appends one input to the log and applies that entry: the only way the primary changes state. */
  private record(type: number, subject: number, body: Uint8Array = EMPTY, bodyStart = 0, bodyEnd = body.length, at = Date.now()): ApplyResult {
    // Held heartbeats happened first: the log keeps that order.
    if (type !== Ev.HEARTBEAT && this.heartbeats.size > 0) this.logHeartbeats(this.heartbeats.take());
    const log = this.eventLog;
    const start = log.append(type, at, subject, body, bodyStart, bodyEnd);
    try {
      return applyEntry(this.scheduler, this.entryReader.reset(log.bytes, start, log.length));
    } catch (err) {
      log.dropLast(start);
      throw err;
    }
  }

  /** Logs heartbeats that were held, each at the time it arrived. */
  private logHeartbeats(beats: readonly HeldHeartbeat[]): void {
    for (const beat of beats) {
      const body = encodeRunning(beat.running);
      this.record(Ev.HEARTBEAT, beat.workerId, body, 0, body.length, beat.at);
    }
  }

  /** Dispatches, writes effects, ships the log to backups, releases committed replies. */
  private pump(): void {
    if (this.disk.failed) return; // stopping: nothing more may be acknowledged (data-dir.ts)
    const monotonic = performance.now();
    // A primary whose etcd lease may have expired acknowledges, replies and dispatches nothing more.
    if (this.role === "primary" && this.control.mayLead?.(monotonic) === false) this.control.fence?.();
    this.noticeStall(monotonic);
    if (this.role !== "primary") {
      this.scheduler.takeReady(); // a backup's effects are the primary's business
      return;
    }
    const now = Date.now();
    if (this.scheduler.dispatchWouldChange(now)) this.record(Ev.DISPATCH, 0);
    const ready = this.scheduler.takeReady();
    this.workers.send(ready, (task) => this.scheduler.inputsOf(task), this.config.scheduler.workerTimeoutMs);
    this.observed.finished(ready.finished, now);
    this.feed.recordReady(ready, now, this.eventLog.lastIndex);
    for (const notice of ready.notices) this.holdDone(notice.task, notice.watcher);
    // Lag is judged at the instant the stall check above saw, not a fresh clock read: a pause
    // inside this pump would otherwise count as the backups' lag and drop them from the ISR
    // before the next tick notices the pause (found by the fault harness, scenario 5b).
    replicate(this.replication, monotonic);
  }

  /** What a replication step does here (core/replication-step.ts has the order and the rules). */
  private readonly replication: ReplicationStep<LogBatch> = {
    take: () => (this.eventLog.pendingEntries === 0 ? undefined : this.eventLog.take()),
    write: (batch) => this.disk.write((wal) => wal.writeRecord(this.epoch, batch.firstIndex, batch.count, batch.bytes)),
    send: (batch) => {
      const now = Date.now();
      this.replicas.broadcast((w) => writeAppend(w, this.epoch, batch.firstIndex, batch.count, batch.bytes, now));
    },
    sync: () => {
      if (!this.disk.write((wal) => wal.syncCommit())) return false;
      this.disk.compactIfDue(this.epoch, this.eventLog.lastIndex, this.scheduler);
      return true;
    },
    commit: (now) => this.replicas.commit(this.eventLog.lastIndex, now),
    release: (committed) => {
      this.held.release(committed);
      this.feed.committed(committed, Date.now());
    },
  };

  private holdDone(task: Task, watcher: Watcher): void {
    const conn = this.connections.get(watcher.conn);
    if (conn === undefined) return;
    conn.idle.endWait();
    this.held.holdTaskDone(this.eventLog.lastIndex, conn, watcher.requestId, task);
  }

  // ------------------------------------------------------------ role changes

  /** Called by Peers: this node is primary of `epoch` now. */
  private promote(epoch: number): void {
    this.eventLog = new EventLog(this.backup.appliedIndex);
    if (this.control instanceof EtcdControl) {
      this.replicas = processIsrReplicaSet(this.control, this.config, this.backup.appliedIndex, this.log, () => this.pump());
    }
    this.record(Ev.PROMOTE, epoch);
    this.feed.lead(1 + Math.floor(Math.random() * 0xfffffffe)); // a term no position from before can match
    for (const worker of this.workers.connected()) this.registerWorker(worker);
    this.announce();
    this.pump();
  }

  /** A higher epoch exists: replies never committed are refused so clients retry at the new primary. */
  private stepDown(reason: string): void {
    this.log.warn("stepping down", { reason, epoch: this.epoch });
    // The state holds every entry this node logged as primary: if it leads again before a
    // snapshot replaces it, its new log must go on from there, not from where it last followed
    // (a restart would otherwise skip the new epoch's records as already applied and lose them).
    this.backup.appliedIndex = this.eventLog.lastIndex;
    this.held.refuseAll(`${this.config.nodeId} stepped down before this was replicated; retry`);
    this.feed.follow(`${this.config.nodeId} stepped down; subscribe at the new primary of shard ${this.config.scheduler.shard}`);
    this.heartbeats.take(); // never logged: the next primary gives every worker a fresh grace period
    this.backupInputs.snapshots.clear();
    this.replicas.closeAll("primary stepped down");
    this.announce();
  }

  /** Tells every connection (routers, workers, clients, peers) this node's role and epoch. */
  private announce(): void {
    announceRole(this.connections.values(), { nodeId: this.config.nodeId, shard: this.config.scheduler.shard, epoch: this.epoch, primary: this.role === "primary" });
  }

  // ------------------------------------------------------------ stats

  stats(requestId: number): CoordinatorStats {
    const now = Date.now();
    return coordinatorStats(requestId, now, {
      nodeId: this.config.nodeId, shard: this.config.scheduler.shard, epoch: this.epoch, scheduler: this.scheduler, uptimeMs: now - this.startedAt,
      replication: replicationStats(this.control, this.replicas, this.eventLog.lastIndex, this.backup.appliedIndex, performance.now()),
      workerNodeId: (id) => this.workers.nodeId(id),
      latency: this.observed.latency, latencyBuckets: this.observed.latencyBuckets, wal: this.disk.wal, heartbeats: this.heartbeats,
    });
  }
}
