// The people around a replicated shard in the replication simulation.
// Workers: stable ids, a few slots, jobs that take a while, heartbeats naming
// what they run, results to whoever is primary now (lost if it crashes first;
// the recent ones sent again to a new primary, as worker.ts does). Clients:
// submissions with idempotency keys, sent again when no acknowledgement comes
// or the primary changes, until the task is reported finished.

import { Ev, encodeRunning, encodeWorkerJoined } from "../../src/coordinator/event-log.ts";
import type { Prng } from "../../src/core/prng.ts";
import type { Task } from "../../src/core/task.ts";
import type { SimNode } from "./replication-node.ts";
import type { Shard } from "./replication-shard.ts";
import { outputFor, resultBody, submitBody } from "./replication-wire.ts";

export const ACTOR_LIMITS = {
  workers: 3, slotsMax: 3, heartbeatMs: 100, resultDelayMsMax: 30, reconnectMsMax: 300,
  jobMsMin: 20, jobMsSpread: 200, longJobOneIn: 6, longJobMsMin: 400, longJobMsSpread: 800,
  /** worker.ts keeps max(slots, 1024); a few dozen cover a replication round trip here. */
  recentResultsMax: 64, waitingResultsMax: 256, flakyOneIn: 30,
  pauseWorkerOneIn: 500, restartWorkerOneIn: 2_000, pauseMsMin: 100, pauseMsSpread: 1_400,
  clients: 3, openPerClientMax: 6, submitOneIn: 10, retryUnackedMs: 400, rewatchMs: 3_000,
};

/** What the actors see of the simulation. */
export interface ActorContext {
  readonly prng: Prng;
  readonly shard: Shard;
  readonly now: number;
  /** Drain phase: workers are reliable, clients submit nothing new. */
  readonly drain: boolean;
  readonly stats: { resultsLost: number; assignsLost: number; workerPauses: number; workerRestarts: number };
}

interface Job {
  taskId: number;
  attempt: number;
  payload: Uint8Array;
  doneAt: number;
}

class SimWorker {
  jobs: Job[] = [];
  /** The primary it said HELLO to and sends results to; undefined while it looks for one. */
  primary: SimNode | undefined;
  primaryEpoch = 0;
  /** The process is stopped (GC pause, SIGSTOP) until then: no heartbeats, no results. */
  pausedUntil = 0;
  /** Its connection to the primary is gone (dropped, or the process restarted) until then. */
  offlineUntil = 0;
  lastHeartbeatAt = -Infinity;
  /** Results sent lately, sent again to a new primary (worker.ts recentResults). */
  recent: Uint8Array[] = [];
  /** Results finished with no primary to send them to (worker.ts resultsWaiting). */
  waiting: Uint8Array[] = [];
  /** Results on their way to the primary they were sent to, in order. */
  inflight: Array<{ at: number; to: SimNode; epoch: number; body: Uint8Array }> = [];
  inflightAt = 0;

  constructor(
    readonly id: number,
    readonly slots: number,
  ) {}
}

export class Workers {
  private readonly all = new Map<number, SimWorker>();

  constructor(private readonly sim: ActorContext) {
    for (let i = 0; i < ACTOR_LIMITS.workers; i++) this.all.set(100 + i, new SimWorker(100 + i, 1 + sim.prng.int(ACTOR_LIMITS.slotsMax)));
  }

  chaos(): void {
    const { prng, now } = this.sim;
    for (const w of this.all.values()) {
      if (prng.int(ACTOR_LIMITS.pauseWorkerOneIn) === 0) {
        w.pausedUntil = Math.max(w.pausedUntil, now + ACTOR_LIMITS.pauseMsMin + prng.int(ACTOR_LIMITS.pauseMsSpread));
        this.sim.stats.workerPauses++;
      }
      if (prng.int(ACTOR_LIMITS.restartWorkerOneIn) === 0) this.restart(w);
    }
  }

  /** The drain: nobody stays stopped. */
  resume(): void {
    for (const w of this.all.values()) w.pausedUntil = Math.min(w.pausedUntil, this.sim.now);
  }

  /** Results arrive; live workers attach to a new primary, finish jobs, heartbeat. */
  step(): void {
    const { shard, now } = this.sim;
    const p = shard.primary;
    for (const w of this.all.values()) {
      this.resultsArrive(w);
      if (now < w.pausedUntil || now < w.offlineUntil) continue;
      if (p !== undefined && (w.primary !== p || w.primaryEpoch !== p.epoch)) this.attach(w, p);
      const due = w.jobs.filter((j) => j.doneAt <= now);
      if (due.length > 0) w.jobs = w.jobs.filter((j) => j.doneAt > now);
      for (const job of due) this.finishJob(w, job);
      if (p !== undefined && w.primary === p && now - w.lastHeartbeatAt >= ACTOR_LIMITS.heartbeatMs) {
        w.lastHeartbeatAt = now;
        if (p.scheduler.worker(w.id) !== undefined) shard.input(Ev.HEARTBEAT, w.id, encodeRunning(w.jobs.map((j) => j.taskId)));
      }
    }
  }

  /** ASSIGN from the primary: it arrives unless the worker has no connection (the lease then expires). */
  assigned(workerId: number, task: Task): void {
    const { prng, now } = this.sim;
    const w = this.all.get(workerId);
    if (w === undefined) throw new Error(`task ${task.id} assigned to unknown worker ${workerId}`);
    if (now < w.offlineUntil) {
      this.sim.stats.assignsLost++;
      return;
    }
    const long = prng.int(ACTOR_LIMITS.longJobOneIn) === 0;
    const ms = long ? ACTOR_LIMITS.longJobMsMin + prng.int(ACTOR_LIMITS.longJobMsSpread) : ACTOR_LIMITS.jobMsMin + prng.int(ACTOR_LIMITS.jobMsSpread);
    w.jobs.push({ taskId: task.id, attempt: task.attempt, payload: task.payload.slice(), doneAt: now + ms });
  }

  /** The primary declared it lost and closed its connection: what was on the way is lost; it reconnects. */
  lost(workerId: number): void {
    const w = this.all.get(workerId)!;
    this.sim.stats.resultsLost += w.inflight.length;
    w.inflight = [];
    w.primary = undefined;
    w.offlineUntil = Math.max(w.pausedUntil, this.sim.now) + 1 + this.sim.prng.int(ACTOR_LIMITS.reconnectMsMax);
  }

  /** Workers are connected to every coordinator: a new primary registers those it does not know (coordinator.promote). */
  promoted(node: SimNode): void {
    for (const w of this.all.values()) {
      if (this.sim.now >= w.offlineUntil && node.scheduler.worker(w.id) === undefined) this.sim.shard.input(Ev.WORKER_JOINED, w.id, encodeWorkerJoined(w.slots, []));
    }
  }

  /** The process restarts with the same id: jobs and memory gone; its connection closes (WORKER_LEFT). */
  private restart(w: SimWorker): void {
    const { shard, now } = this.sim;
    this.sim.stats.workerRestarts++;
    this.sim.stats.resultsLost += w.inflight.length;
    w.jobs = [];
    w.recent = [];
    w.waiting = [];
    w.inflight = [];
    const p = shard.primary;
    if (p !== undefined && now >= w.offlineUntil && p.scheduler.worker(w.id) !== undefined) shard.input(Ev.WORKER_LEFT, w.id);
    w.primary = undefined;
    w.offlineUntil = Math.max(w.pausedUntil, now) + 1 + this.sim.prng.int(ACTOR_LIMITS.reconnectMsMax);
  }

  /** HELLO to a new primary (or again after being dropped): join if unknown, then resend recent results. */
  private attach(w: SimWorker, p: SimNode): void {
    w.primary = p;
    w.primaryEpoch = p.epoch;
    if (p.scheduler.worker(w.id) === undefined) this.sim.shard.input(Ev.WORKER_JOINED, w.id, encodeWorkerJoined(w.slots, []));
    for (const body of [...w.recent, ...w.waiting]) this.sendResult(w, body);
    w.waiting = [];
  }

  private finishJob(w: SimWorker, job: Job): void {
    const ok = this.sim.drain || this.sim.prng.int(ACTOR_LIMITS.flakyOneIn) !== 0;
    const body = resultBody(job.taskId, job.attempt, ok, ok ? outputFor(job.payload) : new TextEncoder().encode("E_SIM: handler failed"));
    const p = this.sim.shard.primary;
    if (p === undefined || w.primary !== p || w.primaryEpoch !== p.epoch) {
      w.waiting.push(body);
      if (w.waiting.length > ACTOR_LIMITS.waitingResultsMax) w.waiting.shift();
      return;
    }
    this.sendResult(w, body);
    w.recent.push(body);
    if (w.recent.length > ACTOR_LIMITS.recentResultsMax) w.recent.shift();
  }

  private sendResult(w: SimWorker, body: Uint8Array): void {
    w.inflightAt = Math.max(w.inflightAt, this.sim.now + this.sim.prng.int(ACTOR_LIMITS.resultDelayMsMax + 1));
    w.inflight.push({ at: w.inflightAt, to: w.primary!, epoch: w.primaryEpoch, body });
  }

  /** Results reach the node they were sent to; if it is no longer that primary, they are lost. */
  private resultsArrive(w: SimWorker): void {
    let n = 0;
    while (n < w.inflight.length && w.inflight[n]!.at <= this.sim.now) n++;
    for (const r of w.inflight.splice(0, n)) {
      const p = this.sim.shard.primary;
      if (p !== undefined && p === r.to && p.epoch === r.epoch) this.sim.shard.input(Ev.RESULT, w.id, r.body);
      else this.sim.stats.resultsLost++;
    }
  }
}

/** One logical submission: the same key (and payload) on every retry. */
export interface Submission {
  key: string;
  client: number;
  payload: Uint8Array;
  priority: number;
  /** From the first SUBMITTED reply; every later one must name the same task. */
  taskId: number | undefined;
  acked: boolean;
  done: boolean;
  lastSentAt: number;
  /** Epoch of the primary it was last sent to: a new primary means send again (and watch again). */
  sentEpoch: number;
  sends: number;
}

/** Connection ids: a client has one connection per primary (epoch). */
const CONN_SPAN = 1000;

export class Clients {
  readonly submissions: Submission[] = [];
  private open: Submission[] = [];
  private readonly byRequest = new Map<number, Submission>();
  private nextRequestId = 1;
  private nextKey = 1;

  constructor(private readonly sim: ActorContext) {}

  /** New submissions (not in the drain), then every unfinished one that is due, in any order. */
  step(): void {
    const { prng, now } = this.sim;
    for (let c = 0; c < ACTOR_LIMITS.clients && !this.sim.drain; c++) {
      if (prng.int(ACTOR_LIMITS.submitOneIn) !== 0) continue;
      if (this.open.filter((s) => s.client === c && !s.done).length >= ACTOR_LIMITS.openPerClientMax) continue;
      const key = `c${c}-k${this.nextKey++}`;
      const s: Submission = {
        key, client: c, payload: new TextEncoder().encode(key), priority: prng.int(3),
        taskId: undefined, acked: false, done: false, lastSentAt: 0, sentEpoch: 0, sends: 0,
      };
      this.submissions.push(s);
      this.open.push(s);
    }
    const p = this.sim.shard.primary;
    if (p === undefined) return;
    // Clients are independent: their retries after a failover arrive in any order.
    for (const s of this.shuffled(this.open)) {
      if (s.done) continue;
      const resend = s.sends === 0 || s.sentEpoch !== p.epoch
        || now - s.lastSentAt >= (s.acked ? ACTOR_LIMITS.rewatchMs : ACTOR_LIMITS.retryUnackedMs);
      if (resend) this.send(s, p);
    }
    if (this.open.length > 4 * ACTOR_LIMITS.clients * ACTOR_LIMITS.openPerClientMax) this.open = this.open.filter((s) => !s.done);
  }

  unfinished(): Submission[] {
    return this.open.filter((s) => !s.done);
  }

  /** The submission a reply answers, and the epoch of the connection it came on. */
  replyTo(requestId: number, conn: number): { submission: Submission | undefined; epoch: number } {
    return { submission: this.byRequest.get(requestId), epoch: Math.floor(conn / CONN_SPAN) };
  }

  /** SUBMIT (again): same key and payload, a new request id, watched from this connection. */
  private send(s: Submission, p: SimNode): void {
    const requestId = this.nextRequestId++;
    this.byRequest.set(requestId, s);
    s.lastSentAt = this.sim.now;
    s.sentEpoch = p.epoch;
    s.sends++;
    const conn = p.epoch * CONN_SPAN + s.client + 1;
    this.sim.shard.submit(conn, requestId, submitBody({ requestId, idempotencyKey: s.key, payload: s.payload, priority: s.priority }));
  }

  private shuffled<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.sim.prng.int(i + 1);
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}
