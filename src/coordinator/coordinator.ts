// The coordinator process shell: TCP in, the pure Scheduler in the middle,
// effects out. On the primary every input becomes a log entry that is applied
// here and streamed to the backups (event-log.ts); replies that tell a client
// something happened are held until every in-sync backup has the entry
// (synchronous replication). Backups apply the same entries and answer
// nothing but reads. Roles change through a RoleControl: static peers
// (peers.ts) or an etcd-led replica group (etcd-control.ts).

import type { Logger } from "../cli/log.ts";
import { Scheduler, type SubmitOutcome } from "../core/scheduler.ts";
import { HeldHeartbeats, type HeldHeartbeat } from "../core/held-heartbeats.ts";
import type { Task, Watcher } from "../core/task.ts";
import { authorizeHello, authorizeKind, type Grants } from "../net/auth.ts";
import type { Connection, ConnectionHandler } from "../net/connection.ts";
import { listen, type Listener } from "../net/endpoints.ts";
import { readControl, Reader, SUBMIT_FLAGS_AT, submitPayloadBytes, writeAssign, writeControl } from "../protocol/codec.ts";
import { ProtocolError } from "../protocol/errors.ts";
import {
  Kind, KIND_NAMES, PROTOCOL_VERSION, ROLES, SUBMIT_FLAG_NOTIFY, TaskStatus,
  type CoordinatorStats, type Heartbeat, type Hello, type Role, type RoleChange, type Welcome,
} from "../protocol/messages.ts";
import { applyEntry, encodeRunning, encodeWorkerJoined, Ev, EventLog, type ApplyResult } from "./event-log.ts";
import { Peers } from "./peers.ts";
import { EtcdControl } from "./etcd-control.ts";
import { processEtcdControl, processIsrReplicaSet } from "./etcd-mode.ts";
import { IsrReplicaSet } from "./isr-replica-set.ts";
import type { Replicas, ReplicationRole, RoleControl, RoleEvents } from "./role-control.ts";
import { RecentLatency } from "./recent-latency.ts";
import { LatencyBuckets } from "../metrics/latency-buckets.ts";
import { Commands } from "./commands.ts";
import { HeldReplies } from "./held-replies.ts";
import { parseWorkerHello } from "./request-shapes.ts";
import { coordinatorStats } from "./coordinator-stats.ts";
import { ReplicaSet } from "./replica-set.ts";
import { readAck, readSnapshotAck, writeAppend } from "./replication-codec.ts";
import { SnapshotStreams } from "./snapshot-stream.ts";
import type { WriteAheadLog } from "./wal.ts";
import { openDataDir } from "./recovery.ts";
import type { CoordinatorConfig } from "./config.ts";
import { BackupLog } from "./backup-log.ts";

export type { CoordinatorConfig } from "./config.ts";


const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();
/** A gap between ticks or reads longer than this (plus tickMs) means the process stood still. */
const STALL_MS = 200;
/** Stats report the latency of tasks finished within about this long. */
const LATENCY_WINDOW_MS = 5_000;

export class Coordinator implements ConnectionHandler {
  scheduler: Scheduler;
  private listener: Listener | undefined;
  private readonly connections = new Map<number, Connection>();
  /** Runtime only: which connection each worker id is on now (never replicated). */
  private readonly workerConns = new Map<number, Connection>();
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private readonly startedAt = Date.now();
  private readonly latency = new RecentLatency(LATENCY_WINDOW_MS);
  private readonly latencyBuckets = new LatencyBuckets();
  /** Last progress reported for running tasks (runtime state, like connections). */
  private readonly progress = new Map<number, number>();
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
  private wal: WriteAheadLog | undefined;
  /** A data directory write failed: nothing more is acknowledged (the process is stopping). */
  private storageFailed = false;
  private readonly commands: Commands;
  /** Monotonic time of the last tick or pump (see noticeStall). */
  private lastActiveAt = performance.now();
  /** Primary: snapshots being streamed to backups that are loading them. */
  private readonly snapshots: SnapshotStreams;

  constructor(
    readonly config: CoordinatorConfig,
    private readonly log: Logger,
    /** The data directory failed a write or sync: the process must stop (see durably). */
    private readonly fatal: () => void = () => process.exit(1),
  ) {
    this.scheduler = new Scheduler(config.scheduler);
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
      get wal() {
        return self.wal;
      },
      get storageFailed() {
        return self.storageFailed;
      },
      durably: (write) => this.durably(write),
    });
    this.replicas = new ReplicaSet(config.backupTimeoutMs, log);
    this.snapshots = new SnapshotStreams(log);
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
      record: (type, subject, body) => this.record(type, subject, body),
      replyWhenCommitted: (conn, requestId, body) =>
        this.held.hold({ index: this.eventLog.lastIndex, conn, kind: Kind.REPLY, requestId, taskId: 0, status: 0, attempts: 0, output: EMPTY, body }),
      scheduler: () => this.scheduler,
      progressOf: (taskId) => this.progress.get(taskId),
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

  start(): void {
    this.recover();
    this.listener = listen(this.config.host, this.config.port, this, this.config.limits, (conn) => this.connections.set(conn.id, conn), this.config.tls.server);
    // -p 0: what etcd tells the others is the port we got.
    if (this.config.advertise.endsWith(":0")) this.config.advertise = `${this.config.host}:${this.port}`;
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
    this.wal = opened.wal;
    this.scheduler = opened.scheduler;
    this.backup.appliedIndex = recovered.index;
    this.eventLog = new EventLog(recovered.index);
    this.control.recovered(recovered.epoch, recovered.index);
    if (opened.setAsideTo !== undefined) this.control.rejoinFromPeer?.();
    this.log.info("recovered", { dataDir: this.config.dataDir, epoch: recovered.epoch, index: recovered.index, tasks: this.scheduler.queuedCount + this.scheduler.leasedTotal, logBatches: recovered.batches.length });
  }

  stop(): void {
    clearInterval(this.tickTimer);
    this.wal?.close();
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
    const primary = this.role === "primary";
    switch (kind) {
      case Kind.SUBMIT: {
        if (r.end - r.pos < 4) throw new ProtocolError("E_BAD_FRAME", "SUBMIT shorter than its request id");
        const requestId = r.view.getUint32(r.pos, true);
        if (!primary) return this.refuseNotPrimary(conn, requestId);
        if (this.stopping) return conn.sendError(requestId, "E_SHUTTING_DOWN", `${this.config.nodeId} is handing over; retry`);
        // Malformed: answered on this request alone, as Commands.answer() does.
        let outcome: SubmitOutcome;
        try {
          const payloadBytes = submitPayloadBytes(r);
          if (payloadBytes > this.config.payloadBytesMax) return this.commands.refusePayload(conn, requestId, payloadBytes);
          outcome = this.record(Ev.SUBMIT, conn.id, r.bytes, r.pos, r.end) as SubmitOutcome;
        } catch (err) {
          if (!(err instanceof ProtocolError)) throw err;
          return conn.sendError(requestId, err.code, err.message);
        }
        // A refusal changed nothing but a counter; it needs no replication before the client hears it.
        if (!outcome.ok) return conn.sendError(requestId, outcome.code, outcome.message);
        // A submitter that asked to be told when the task ends (notify) hears once, its TASK_DONE (which says it was accepted too).
        const quiet = (r.bytes[r.pos + SUBMIT_FLAGS_AT]! & SUBMIT_FLAG_NOTIFY) !== 0;
        this.held.hold({ index: this.eventLog.lastIndex, conn, kind: Kind.SUBMITTED, requestId, taskId: outcome.taskId, status: 0, attempts: 0, output: EMPTY, quiet });
        if (quiet) conn.idle.startWait(); // it waits for the task to end: not idle meanwhile (holdDone ends the wait)
        return;
      }
      case Kind.RESULT:
        if (role !== "worker") throw new ProtocolError("E_BAD_REQUEST", "only workers send RESULT");
        // A backup has no leases to settle; the worker resends to the primary it finds.
        if (primary) this.record(Ev.RESULT, conn.state.workerId as number, r.bytes, r.pos, r.end);
        return;
      case Kind.HEARTBEAT: {
        const beat = readControl<Partial<Heartbeat>>(r);
        const workerId = conn.state.workerId as number;
        if (!primary || this.scheduler.worker(workerId) === undefined) return;
        const running = Array.isArray(beat.taskIds) ? beat.taskIds.slice(0, this.config.workerSlotsMax).map(Number).filter(Number.isFinite) : [];
        this.logHeartbeats(this.heartbeats.hold({ workerId, at: Date.now(), running }));
        return;
      }
      case Kind.DRAIN: {
        readControl(r);
        const workerId = conn.state.workerId as number;
        this.log.info("worker draining", { workerId, nodeId: conn.state.nodeId });
        if (primary && this.scheduler.worker(workerId) !== undefined) this.record(Ev.WORKER_DRAINING, workerId);
        return;
      }
      case Kind.PROGRESS: {
        // Soft, runtime-only state: not logged, lost on failover, shown in task status.
        const p = readControl<{ taskId?: unknown; attempt?: unknown; progress?: unknown }>(r);
        const task = this.scheduler.task(Number(p.taskId));
        if (task?.state === "leased" && task.attempt === Number(p.attempt)) this.progress.set(task.id, Math.min(1, Math.max(0, Number(p.progress) || 0)));
        return;
      }
      case Kind.STATS_REQUEST: {
        const req = readControl<{ requestId?: unknown }>(r);
        writeControl(conn.writer, Kind.STATS, this.stats(Number(req.requestId) || 0));
        conn.queueFlush();
        return;
      }
      case Kind.TASK_QUERY:
        return this.commands.taskQuery(conn, readControl<{ requestId?: unknown; taskId?: unknown }>(r));
      case Kind.CANCEL:
      case Kind.WATCH:
      case Kind.WORKFLOW:
      case Kind.DLQ_REQUEUE:
      case Kind.DLQ_PURGE:
      case Kind.PARENT_ENDED: {
        const q = readControl<Record<string, unknown>>(r);
        return this.commands.answer(conn, kind, q);
      }
      case Kind.FOREIGN_WAITS:
        return this.commands.foreignWaits(conn, readControl<{ requestId?: unknown }>(r));
      case Kind.DLQ_LIST:
        return this.commands.deadLetters(conn, readControl<{ requestId?: unknown; offset?: unknown; limit?: unknown }>(r));
      case Kind.REPL_SYNC: {
        if (role !== "coordinator") throw new ProtocolError("E_BAD_REQUEST", "only coordinators replicate");
        const sync = readControl<{ replicaId?: unknown }>(r);
        // etcd mode names ISR members by incarnation (replica id); static peers by connection.
        conn.state.replicaId = typeof sync.replicaId === "string" ? sync.replicaId : String(conn.state.nodeId);
        return this.sendSnapshot(conn);
      }
      case Kind.ERROR: {
        const e = readControl<{ code?: unknown; message?: unknown }>(r);
        this.log.warn("peer reported an error", { peer: conn.state.nodeId, role, code: e.code, message: e.message });
        return;
      }
      case Kind.REPL_ACK: {
        const ack = readAck(r);
        if (ack.epoch !== this.epoch) return;
        this.replicas.ack(conn, ack.index, performance.now());
        if (Number.isFinite(ack.clockMs)) this.replicas.clockOffset?.(conn, Date.now() - ack.clockMs);
        return;
      }
      case Kind.REPL_SNAPSHOT_ACK: {
        const ack = readSnapshotAck(r);
        if (this.snapshots.restored(conn, ack.epoch, ack.index, ack.parts)) this.replicas.progress?.(conn, performance.now());
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
    this.snapshots.remove(conn);
    this.replicas.remove(conn, performance.now(), reason);
    const workerId = conn.state.workerId as number | undefined;
    if (workerId === undefined || this.workerConns.get(workerId) !== conn) return;
    this.workerConns.delete(workerId);
    this.log.info("worker lost", { workerId, nodeId: conn.state.nodeId, reason });
    if (this.role === "primary" && this.scheduler.worker(workerId) !== undefined) {
      this.record(Ev.WORKER_LEFT, workerId);
      this.pump();
    }
  }

  /**
   * Ticks and reads keep this process busy at least every tickMs; a longer gap means it
   * stood still (SIGSTOP, a long GC, a starved host). Replicas' acks from that time are
   * unread in our sockets, so a primary must not drop them from the ISR for being late
   * on the first pump after it (found by the fault harness: a primary resumed from a
   * 0.7 s pause wrote an ISR of itself alone, then died, and nobody could lead).
   */
  private noticeStall(monotonic: number): void {
    const gapMs = monotonic - this.lastActiveAt;
    this.lastActiveAt = monotonic;
    if (gapMs > STALL_MS + this.config.tickMs && this.role === "primary") {
      this.log.warn("this process stood still; replicas' lag clocks start over", { stalledMs: Math.round(gapMs) });
      this.replicas.stalled?.(monotonic, gapMs);
    }
  }

  private onTick(): void {
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
      this.snapshots.pump(); // a backup's socket that was full may take the next part now
      if (this.eventLog.lastIndex === lastIndex) this.replicas.broadcast((w) => writeAppend(w, this.epoch, lastIndex + 1, 0, EMPTY, now));
    }
    this.control.tick(now);
  }

  private hello(conn: Connection, hello: Hello): void {
    if (hello.version !== PROTOCOL_VERSION) {
      throw new ProtocolError("E_BAD_VERSION", `peer speaks protocol version ${hello.version}; this coordinator speaks ${PROTOCOL_VERSION}`);
    }
    if (!ROLES.includes(hello.role)) throw new ProtocolError("E_BAD_HELLO", `unknown role "${String(hello.role)}"`);
    conn.state.grants = authorizeHello(this.config.tokens, hello.role, hello.token);
    conn.handshakeDone(hello.role);
    conn.state.role = hello.role;
    conn.state.nodeId = String(hello.nodeId ?? "");
    if (hello.role === "worker") this.workerHello(conn, hello);
    if (hello.role === "coordinator" && Number(hello.shard) !== this.config.scheduler.shard) {
      throw new ProtocolError("E_BAD_HELLO", `coordinator of shard ${String(hello.shard)} cannot peer with shard ${this.config.scheduler.shard}`);
    }
    const welcome: Welcome = {
      role: "coordinator", version: PROTOCOL_VERSION, nodeId: this.config.nodeId,
      shard: this.config.scheduler.shard, epoch: this.epoch, primary: this.role === "primary",
      index: this.role === "primary" ? this.eventLog.lastIndex : this.backup.appliedIndex,
    };
    writeControl(conn.writer, Kind.WELCOME, welcome);
    conn.queueFlush();
  }

  private workerHello(conn: Connection, hello: Hello): void {
    const { workerId, slots, tags } = parseWorkerHello(hello, this.config.workerSlotsMax);
    conn.state.workerId = workerId;
    conn.state.slots = slots;
    conn.state.tags = tags;
    // A reconnect replaces the old connection and keeps its leases: results may arrive on either.
    this.workerConns.set(workerId, conn);
    if (this.role === "primary") this.registerWorker(workerId, slots, tags);
    this.log.info("worker joined", { workerId, nodeId: conn.state.nodeId, slots, tags });
  }

  /**
   * Primary: a connected worker enters the scheduler. One it knows already (a
   * reconnect, or a lease holder from before a failover) keeps its leases; its
   * next heartbeat says which of them are still running.
   */
  private registerWorker(workerId: number, slots: number, tags: string[]): void {
    if (this.scheduler.worker(workerId) === undefined) this.record(Ev.WORKER_JOINED, workerId, encodeWorkerJoined(slots, tags));
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
    if (this.storageFailed) return; // stopping: nothing more may be acknowledged (durably)
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
    for (const [workerId, tasks] of ready.assignments) {
      const conn = this.workerConns.get(workerId);
      if (conn === undefined || !conn.writable()) continue; // the lease expires and the task is retried
      for (const t of tasks) writeAssign(conn.writer, t.id, t.attempt, t.timeoutMs, t.type, t.payload, t.dependsOn.length === 0 ? undefined : this.scheduler.inputsOf(t));
      conn.queueFlush();
    }
    for (const task of ready.finished) {
      this.latency.record(now, now - task.submittedAt);
      this.latencyBuckets.record(now - task.submittedAt);
      this.progress.delete(task.id);
      if (task.state === "failed") {
        const last = task.errors.at(-1);
        this.log.warn("task dead-lettered", { taskId: task.id, type: task.type, attempts: task.attempt, error: last?.error.split("\n")[0] });
      }
    }
    for (const notice of ready.notices) this.holdDone(notice.task, notice.watcher);
    for (const abort of ready.aborts) {
      const conn = this.workerConns.get(abort.workerId);
      if (conn === undefined || !conn.writable()) continue;
      writeControl(conn.writer, Kind.ABORT, { taskId: abort.taskId, attempt: abort.attempt });
      conn.queueFlush();
    }
    for (const workerId of ready.lostWorkers) {
      this.log.warn("worker timed out", { workerId, timeoutMs: this.config.scheduler.workerTimeoutMs });
      this.workerConns.get(workerId)?.close("worker missed its heartbeats");
    }
    this.shipLog();
    if (this.storageFailed) return;
    this.held.release(this.replicas.commit(this.eventLog.lastIndex, monotonic));
  }

  /** Makes the new entries durable (with --data-dir), then sends them to the backups. */
  private shipLog(): void {
    if (this.eventLog.pendingEntries === 0) return;
    const batch = this.eventLog.take();
    const wal = this.wal;
    if (wal !== undefined && !this.durably(() => {
      wal.append(this.epoch, batch.firstIndex, batch.count, batch.bytes);
      if (wal.wantsSnapshot) wal.snapshot(this.epoch, this.eventLog.lastIndex, this.scheduler.exportState());
    })) return;
    const now = Date.now();
    this.replicas.broadcast((w) => writeAppend(w, this.epoch, batch.firstIndex, batch.count, batch.bytes, now));
  }

  private holdDone(task: Task, watcher: Watcher): void {
    const conn = this.connections.get(watcher.conn);
    if (conn === undefined) return;
    conn.idle.endWait();
    const ok = task.state === "completed";
    const output = ok ? (task.output ?? EMPTY) : utf8.encode(task.state === "cancelled" ? "E_CANCELLED: the task was cancelled" : (task.errors.at(-1)?.error ?? "failed"));
    this.held.hold({
      index: this.eventLog.lastIndex, conn, kind: Kind.TASK_DONE, requestId: watcher.requestId,
      taskId: task.id, status: ok ? TaskStatus.OK : TaskStatus.FAILED, attempts: task.attempt, output,
    });
  }

  /**
   * Streams this primary's state at the last shipped entry to a backup, in parts cut
   * while it goes on serving (snapshot-stream.ts); the entries after it follow on
   * the same connection.
   */
  private sendSnapshot(conn: Connection): void {
    if (this.role !== "primary") return this.refuseNotPrimary(conn, 0);
    this.pump(); // everything so far goes out to existing backups first: the snapshot follows the last shipped entry
    const index = this.eventLog.lastIndex;
    this.replicas.add(conn, index, performance.now());
    this.snapshots.start(conn, this.epoch, index, this.scheduler, this.config.snapshotBytesMax);
    this.log.info("backup syncing", { backup: conn.state.nodeId, index });
  }

  // ------------------------------------------------------------ data directory

  /**
   * Runs a write or sync of the data directory. One that fails leaves what the disk
   * holds unknown (a failed fsync may have dropped the dirty pages, PostgreSQL's
   * "fsyncgate"), and the entries are already out of the in-memory log: carrying on
   * could acknowledge what no disk holds. So, as etcd and PostgreSQL do, the process
   * stops; a restart recovers from what the disk really holds, and a replica takes over.
   * Until then nothing is acknowledged, replied or sent: false.
   */
  private durably(write: () => void): boolean {
    if (this.storageFailed) return false;
    try {
      write();
      return true;
    } catch (err) {
      this.storageFailed = true;
      this.log.error("data directory write failed; stopping: what is on disk is unknown", { dataDir: this.config.dataDir, error: (err as Error).message });
      this.control.stop();
      this.fatal();
      return false;
    }
  }

  // ------------------------------------------------------------ role changes

  /** Called by Peers: this node is primary of `epoch` now. */
  private promote(epoch: number): void {
    this.eventLog = new EventLog(this.backup.appliedIndex);
    if (this.control instanceof EtcdControl) {
      this.replicas = processIsrReplicaSet(this.control, this.config, this.backup.appliedIndex, this.log, () => this.pump());
    }
    this.record(Ev.PROMOTE, epoch);
    for (const [workerId, conn] of this.workerConns) this.registerWorker(workerId, conn.state.slots as number, conn.state.tags as string[]);
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
    this.heartbeats.take(); // never logged: the next primary gives every worker a fresh grace period
    this.snapshots.clear();
    this.replicas.closeAll("primary stepped down");
    this.announce();
  }

  /** Tells every connection (routers, workers, clients, peers) this node's role and epoch. */
  private announce(): void {
    const role: RoleChange = { nodeId: this.config.nodeId, shard: this.config.scheduler.shard, epoch: this.epoch, primary: this.role === "primary" };
    for (const conn of this.connections.values()) {
      if (conn.state.role === undefined || !conn.writable()) continue;
      writeControl(conn.writer, Kind.ROLE, role);
      conn.queueFlush();
    }
  }

  // ------------------------------------------------------------ stats

  stats(requestId: number): CoordinatorStats {
    const now = Date.now();
    const primary = this.role === "primary";
    return coordinatorStats(requestId, now, {
      nodeId: this.config.nodeId, shard: this.config.scheduler.shard, epoch: this.epoch, scheduler: this.scheduler, uptimeMs: now - this.startedAt,
      replication: {
        role: this.role,
        appliedIndex: primary ? this.eventLog.lastIndex : this.backup.appliedIndex,
        committedIndex: primary ? this.replicas.committedIndex : this.backup.appliedIndex,
        backupsInSync: this.replicas.inSyncCount,
        alone: primary && this.replicas.alone(performance.now()),
        following: this.control.primaryLabel,
        ...(this.control instanceof EtcdControl && {
          replicaId: this.control.replicaId,
          ...(primary && this.replicas instanceof IsrReplicaSet && { isr: [...this.replicas.members] }),
          ...(this.control.notLeadingReason !== "" && { notLeading: this.control.notLeadingReason }),
        }),
      },
      workerNodeId: (id) => String(this.workerConns.get(id)?.state.nodeId ?? ""),
      latency: this.latency, latencyBuckets: this.latencyBuckets, wal: this.wal, heartbeats: this.heartbeats,
    });
  }

}
