// Seeded randomized simulation of the scheduler core with unreliable workers
// (TigerBeetle VOPR style): workers (some with tags) join, leave, go silent,
// lose jobs, answer late or fail; tasks come with priorities, deadlines, delays,
// backoff, tags and dependencies, alone or as workflows (now and then retried
// under their idempotency keys); clients cancel, watch, requeue and purge dead
// letters; time advances. A model of every task checks each effect as it comes
// out and the invariants after every step (the model's, and the core's own full
// consistency check, Scheduler.checkInvariants), and a drain phase with reliable
// workers must bring every task to a final state.
// Reproduce with the seed printed in the failure: SIM_SEED=N bun test test/sim/scheduler-sim.test.ts

import { describe, expect, test } from "bun:test";
import { retryDelayMs } from "../../src/core/backoff-policy.ts";
import { WATCHERS_MAX } from "../../src/core/lifecycle.ts";
import { Prng } from "../../src/core/prng.ts";
import { Scheduler, type Ready, type SchedulerOptions, type SubmitOutcome, type WorkflowNodeRequest } from "../../src/core/scheduler.ts";
import { isFinal, type Backoff, type Task } from "../../src/core/task.ts";

const OPTIONS: SchedulerOptions = {
  shard: 2, queueMax: 200, retainedMax: 250, retainedMs: 4000, dlqMax: 60, leaseMs: 300, workerTimeoutMs: 700,
  defaultTimeoutMs: 2000, defaultMaxAttempts: 4, agingMs: 200,
};

const CHAOS_STEPS = 5000;
/** A bound on the drain phase: reliable workers must finish everything well before it. */
const DRAIN_STEPS_MAX = 4000;
const WORKERS_MAX = 6;
const KEY_POOL = 40;
/** Parents are picked among this many most recent tasks (older ones are often evicted: E_UNKNOWN_TASK). */
const PARENT_POOL = 64;
const TAGS = ["gpu", "ssd", "tpu"] as const;
/** Task types: most tasks are "sim", which most workers handle; "rare" only some do. */
const TYPES = ["sim", "sim", "sim", "rare"] as const;
/** What a joining worker handles: any type (announced none), or a list. */
const WORKER_TYPES: ReadonlyArray<readonly string[] | "any"> = ["any", ["sim"], ["sim", "rare"], ["rare"]];
const WATCHER_CONNS = 3;
const ERRORS_KEPT_MAX = 16;

type Behaviour = "reliable" | "flaky" | "slow";
type Final = "completed" | "failed" | "cancelled";
type Notice = [taskId: number, conn: number, requestId: number];

interface Job { taskId: number; attempt: number; doneAt: number }

interface SimWorker { id: number; /** Its credit (workerCredit moves it). */ slots: number; tags: ReadonlySet<string>; types: ReadonlySet<string> | undefined; behaviour: Behaviour; jobs: Job[]; silentUntil: number; lastHeartbeatAt: number }

/** A result still on the wire from a worker the scheduler dropped. */
interface LateResult { workerId: number; job: Job; at: number }

interface TaskModel {
  id: number;
  maxAttempts: number;
  runAt: number;
  deadline: number;
  backoff: Backoff | undefined;
  tags: readonly string[];
  type: string;
  parents: readonly number[];
  /** Attempt numbers handed out, in order, with the worker of each. */
  leases: Array<{ attempt: number; workerId: number }>;
  state: "unfinished" | Final;
  /** Evicted (retention, dlqMax) or purged: the scheduler no longer knows it. */
  gone: boolean;
  /** [connection, request id] of each request waiting for the end. */
  watchers: Array<[number, number]>;
  requeues: number;
  /** Failures that recorded an error without an attempt (deadline, dependency). */
  freeErrors: number;
  /** Its last failure was E_DEPENDENCY: it never saw every parent complete, so a requeue places it again. */
  failedOnParent: boolean;
  /** Set just before a cancel of this unfinished task; `leased` tells if it was running. */
  cancelling: { leased: boolean } | undefined;
  finishedAt: number;
}

type TaskFields = ReturnType<Simulation["fields"]>;

/** What the model expects of one submit, decided before it is made. */
interface SubmitPlan {
  key: string;
  watcher: number;
  f: TaskFields;
  parents: number[];
  duplicateOf: number | undefined;
  unknownParent: boolean;
  full: boolean;
}

/** A workflow to submit, and what the model knows of it beforehand. */
interface PlannedWorkflow {
  nodes: WorkflowNodeRequest[];
  fs: TaskFields[];
  cyclic: boolean;
  existing: number | undefined;
  /** Node 0 reuses the key of a live task that is not part of this workflow. */
  collides: boolean;
  /** A retry: the ids its first submission got. */
  earlierIds: readonly number[] | undefined;
}

class SimFailure extends Error {}

const sortNotices = (list: Notice[]): Notice[] => [...list].sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2]);
const rankKey = (t: Task): [number, number, number] => [t.band, t.deadline === 0 ? Infinity : t.deadline, t.id];
const rankBefore = (a: [number, number, number], b: [number, number, number]): boolean => a[0] !== b[0] ? a[0] < b[0] : a[1] !== b[1] ? a[1] < b[1] : a[2] < b[2];

class Simulation {
  readonly prng: Prng;
  readonly s = new Scheduler(OPTIONS);
  now = 0;
  step = 0;
  private nextWorkerId = 1;
  readonly workers = new Map<number, SimWorker>();
  private late: LateResult[] = [];
  readonly tasks = new Map<number, TaskModel>();
  private readonly recent: number[] = [];
  /** Tasks evicted or purged lately: now and then a parent is picked among them (E_UNKNOWN_TASK). */
  private readonly recentlyGone: number[] = [];
  private readonly keys = new Map<string, number>();
  /** The last workflow created with idempotency keys, to submit again now and then. */
  private lastKeyed: PlannedWorkflow | undefined;
  private nextWorkflowKey = 0;
  /** Completed and cancelled tasks still retained, oldest first (the scheduler's retention order). */
  private retained: TaskModel[] = [];
  /** Failed tasks in the dead-letter queue, oldest first. */
  private readonly dlq = new Map<number, TaskModel>();
  private expectedNotices: Notice[] = [];
  private expectedAborts: Array<{ workerId: number; taskId: number; attempt: number }> = [];
  private totals = { completed: 0, failed: 0, cancelled: 0, deadlineMissed: 0, refused: 0 };
  stats = {
    stale: 0, lost: 0, left: 0, duplicates: 0, retried: 0, aborts: 0, requeues: 0, requeuesPlacedAgain: 0, requeuesParentGone: 0, workflowRetries: 0, workflowKeysRefused: 0, purged: 0, dlqEvicted: 0, agedOut: 0,
    dependencyFailures: 0, unknownParent: 0, idleDispatches: 0, workflows: 0, cycles: 0, taggedLeases: 0, typedLeases: 0, unmatchedByType: 0, creditBelowLeases: 0, delayedLeases: 0, backoffWaits: 0, jobsLost: 0, watches: 0,
  };

  constructor(readonly seed: number) {
    this.prng = new Prng(seed);
  }

  fail(message: string): never {
    throw new SimFailure(`seed=${this.seed} step=${this.step} now=${this.now}: ${message}`);
  }

  check(condition: boolean, message: () => string): void {
    if (!condition) this.fail(message());
  }

  private model(id: number): TaskModel {
    return this.tasks.get(id) ?? this.fail(`unknown task ${id}`);
  }

  /**
   * Every event goes through here: the effects it produced are checked at once,
   * so each is attributable. `prepare` updates the model first (a new task may
   * be reported failed, and its watcher told, by the very submit that made it).
   */
  private call<T>(event: () => T, prepare?: (out: T) => void): T {
    const out = event();
    prepare?.(out);
    this.absorb(this.s.takeReady());
    return out;
  }

  private get unfinishedInScheduler(): number {
    return this.s.queuedCount + this.s.leasedTotal + this.s.waitingTotal + this.s.delayedTotal;
  }

  // ------------------------------------------------------------ client events

  private randomTags(p: Prng, chance: number): string[] {
    return p.int(chance) === 0 ? TAGS.filter(() => p.int(2) === 0) : [];
  }

  private fields() {
    const p = this.prng;
    const maxAttempts = p.int(3) === 0 ? 0 : 1 + p.int(5);
    const backoff: Backoff | undefined = p.int(3) === 0 ? { type: p.int(2) === 0 ? "fixed" : "exponential", delayMs: p.int(200), maxDelayMs: p.int(800) } : undefined;
    return {
      type: TYPES[p.int(TYPES.length)]!, payload: new Uint8Array(0), priority: p.int(5) === 0 ? p.int(256) : p.int(4), maxAttempts,
      timeoutMs: p.int(3) === 0 ? 0 : 150 + p.int(3000), idempotencyKey: "",
      deadline: p.int(6) === 0 ? this.now + 50 + p.int(1500) : 0, runAt: p.int(6) === 0 ? this.now + p.int(1000) : 0,
      backoff, tags: this.randomTags(p, 5),
    };
  }

  private register(id: number, f: TaskFields, parents: readonly number[]): TaskModel {
    this.check(!this.tasks.has(id), () => `task id ${id} handed out twice`);
    const m: TaskModel = {
      id, maxAttempts: f.maxAttempts > 0 ? f.maxAttempts : OPTIONS.defaultMaxAttempts, runAt: f.runAt, deadline: f.deadline, backoff: f.backoff,
      tags: f.tags, type: f.type, parents, leases: [], state: "unfinished", gone: false, watchers: [], requeues: 0, freeErrors: 0, failedOnParent: false, cancelling: undefined, finishedAt: 0,
    };
    this.tasks.set(id, m);
    this.recent.push(id);
    if (this.recent.length > PARENT_POOL) this.recent.shift();
    return m;
  }

  /**
   * The state a task must take when created now, as place() decides from its
   * parents and runAt. `fresh`: the first states of the other tasks of the same
   * workflow, whose model has not seen their effects yet.
   */
  private expectedFirstState(m: TaskModel, fresh: ReadonlyMap<number, string> = new Map()): string {
    const parents = m.parents.map((id) => fresh.get(id) ?? this.model(id).state);
    if (parents.some((q) => q === "failed" || q === "cancelled")) return "failed";
    if (parents.some((q) => q !== "completed")) return "waiting";
    return m.runAt > this.now ? "delayed" : "queued";
  }

  /** Checks the first state of new tasks, given in creation order (parents first). */
  private checkNew(models: readonly TaskModel[]): void {
    const fresh = new Map<number, string>();
    for (const m of models) {
      const expected = this.expectedFirstState(m, fresh);
      fresh.set(m.id, expected);
      this.check(this.s.task(m.id)?.state === expected, () => `new task ${m.id} is ${this.s.task(m.id)?.state}, expected ${expected} (parents ${m.parents})`);
    }
  }

  submitSome(): void {
    const p = this.prng;
    // Now and then a burst, so the queue fills and E_QUEUE_FULL is exercised.
    for (let n = p.int(150) === 0 ? 150 : p.int(3); n > 0; n--) {
      const key = p.int(4) === 0 ? `k${p.int(KEY_POOL)}` : "";
      const knownId = key === "" ? undefined : this.keys.get(key);
      const parents = p.int(4) === 0 && this.recent.length > 0 ? Array.from({ length: 1 + p.int(2) }, () => this.someParent()) : [];
      const plan: SubmitPlan = {
        key, watcher: p.int(WATCHER_CONNS + 1), f: { ...this.fields(), idempotencyKey: key }, parents,
        duplicateOf: knownId !== undefined && this.s.task(knownId) !== undefined ? knownId : undefined,
        unknownParent: parents.some((id) => this.s.task(id) === undefined),
        full: this.unfinishedInScheduler >= OPTIONS.queueMax,
      };
      const request = { ...plan.f, dependsOn: parents, watcher: plan.watcher, watchRequestId: this.step };
      this.call(() => this.s.submit(request, this.now), (outcome) => this.submitted(outcome, plan));
    }
  }

  private someParent(): number {
    const p = this.prng;
    if (this.recentlyGone.length > 0 && p.int(32) === 0) return this.recentlyGone[p.int(this.recentlyGone.length)]!;
    return this.recent[p.int(this.recent.length)]!;
  }

  /** Checks a submit's outcome against what the model predicted, and registers a new task before its effects are read. */
  private submitted(outcome: SubmitOutcome, plan: SubmitPlan): void {
    const { duplicateOf, watcher, parents } = plan;
    if (duplicateOf !== undefined) {
      this.check(outcome.ok && outcome.duplicate && outcome.taskId === duplicateOf, () => `key ${plan.key} of live task ${duplicateOf} gave ${JSON.stringify(outcome)}`);
      this.stats.duplicates++;
      if (watcher !== 0) this.watched(this.model(duplicateOf), watcher, this.step);
      return;
    }
    if (plan.unknownParent) {
      this.check(!outcome.ok && outcome.code === "E_UNKNOWN_TASK", () => `unknown parent in ${parents} but submit gave ${JSON.stringify(outcome)}`);
      this.stats.unknownParent++;
      return;
    }
    if (plan.full) {
      this.check(!outcome.ok && outcome.code === "E_QUEUE_FULL", () => `queue full but submit gave ${JSON.stringify(outcome)}`);
      this.totals.refused++;
      return;
    }
    if (!outcome.ok) this.fail(`submit refused with room: ${outcome.code} ${outcome.message}`);
    this.check(!outcome.duplicate, () => `new task ${outcome.taskId} reported as a duplicate`);
    const m = this.register(outcome.taskId, plan.f, parents);
    if (watcher !== 0) this.watched(m, watcher, this.step);
    if (plan.key !== "") this.keys.set(plan.key, outcome.taskId);
    this.checkNew([m]);
  }

  /** A new random workflow, sometimes cyclic; its nodes sometimes keyed, once in a while with a key a live task holds. */
  private newWorkflow(): PlannedWorkflow {
    const p = this.prng;
    const n = 2 + p.int(3);
    const cyclic = p.int(8) === 0;
    const existing = this.recent.length > 0 && p.int(2) === 0 ? this.recent[p.int(this.recent.length)]! : undefined;
    const fs = Array.from({ length: n }, () => this.fields());
    const nodes: WorkflowNodeRequest[] = fs.map((f, i) => ({
      ...f,
      dependsOn: [
        ...Array.from({ length: i }, (_, j) => j).filter(() => p.int(2) === 0).map((j) => ({ node: j })),
        ...(i === 0 && existing !== undefined ? [{ taskId: existing }] : []),
        ...(i === 0 && cyclic ? [{ node: n - 1 }] : []),
      ],
    }));
    if (cyclic) nodes[n - 1] = { ...nodes[n - 1]!, dependsOn: [...nodes[n - 1]!.dependsOn, { node: 0 }] };
    let collides = false;
    if (p.int(3) === 0) {
      // Keys of their own, never used elsewhere, on node 1 always and on others at random.
      for (const [i, node] of nodes.entries()) if (i === 1 || p.int(2) === 0) node.idempotencyKey = `w${this.nextWorkflowKey++}`;
      const taken = [...this.keys].filter(([, id]) => this.s.task(id) !== undefined);
      if (taken.length > 0 && p.int(8) === 0) {
        // Node 0 names a live task's key: never a retry (node 1's fresh key names nothing), so refused.
        nodes[0]!.idempotencyKey = taken[p.int(taken.length)]![0];
        collides = !cyclic;
      }
    }
    return { nodes, fs, cyclic, existing, collides, earlierIds: undefined };
  }

  /**
   * A workflow: a new one, or now and then the last keyed one again. A retry
   * whose keys still name its tasks gets the original ids, if every task is
   * still held, and is refused otherwise; one whose keyed tasks are all gone is new.
   */
  submitWorkflow(): void {
    const p = this.prng;
    const plan = this.lastKeyed !== undefined && p.int(3) === 0 ? this.lastKeyed : this.newWorkflow();
    const { nodes, fs, cyclic, existing, earlierIds } = plan;
    const n = nodes.length;
    const keyedHeld = earlierIds !== undefined && nodes.some((node, i) => node.idempotencyKey !== "" && !this.model(earlierIds[i]!).gone);
    const allHeld = earlierIds !== undefined && earlierIds.every((id) => !this.model(id).gone);
    const unknown = existing !== undefined && this.s.task(existing) === undefined;
    const full = this.unfinishedInScheduler + n > OPTIONS.queueMax;
    const submittedBefore = this.s.counters.submitted;
    let models: TaskModel[] = [];
    const outcome = this.call(() => this.s.submitWorkflow(nodes, this.now), (out) => {
      if (!out.ok || (keyedHeld && allHeld)) return;
      const ids = out.taskIds;
      models = nodes.map((node, i) => this.register(ids[i]!, fs[i]!, node.dependsOn.map((r) => ("taskId" in r ? r.taskId : ids[r.node]!))));
      this.checkNew([...models].sort((a, b) => a.id - b.id)); // ids follow creation order, parents first
    });
    const expected = cyclic ? "E_CYCLE" : plan.collides || (keyedHeld && !allHeld) ? "E_BAD_REQUEST" : keyedHeld ? "duplicate"
      : unknown ? "E_UNKNOWN_TASK" : full ? "E_QUEUE_FULL" : "ok";
    const got = !outcome.ok ? outcome.code : keyedHeld ? "duplicate" : "ok";
    this.check(got === expected, () => `workflow of ${n} expected ${expected}, got ${JSON.stringify(outcome)}`);
    if (!outcome.ok || expected === "duplicate") this.check(this.s.counters.submitted === submittedBefore, () => `workflow ${expected} created tasks`);
    if (!outcome.ok) {
      if (outcome.code === "E_CYCLE") this.stats.cycles++;
      if (outcome.code === "E_UNKNOWN_TASK") this.stats.unknownParent++;
      if (outcome.code === "E_QUEUE_FULL") this.totals.refused++;
      if (outcome.code === "E_BAD_REQUEST") this.stats.workflowKeysRefused++;
      return;
    }
    if (expected === "duplicate") {
      this.check(JSON.stringify(outcome.taskIds) === JSON.stringify(earlierIds), () => `retried workflow got ${outcome.taskIds}, first submission ${earlierIds}`);
      this.stats.duplicates++;
      this.stats.workflowRetries++;
      return;
    }
    this.stats.workflows++;
    this.check(models.length === n, () => `workflow made ${models.length} of ${n} tasks`);
    if (nodes.some((node) => node.idempotencyKey !== "")) this.lastKeyed = { ...plan, earlierIds: outcome.taskIds };
  }

  /** A watcher for a task: told at once if it ended, else when it ends (each request once, at most WATCHERS_MAX, oldest dropped). */
  private watched(m: TaskModel, conn: number, requestId: number): void {
    if (m.state !== "unfinished") {
      this.expectedNotices.push([m.id, conn, requestId]);
      return;
    }
    if (m.watchers.some(([c, r]) => c === conn && r === requestId)) return;
    m.watchers.push([conn, requestId]);
    if (m.watchers.length > WATCHERS_MAX) m.watchers.shift();
  }

  private randomTask(): TaskModel | undefined {
    return this.recent.length === 0 ? undefined : this.model(this.recent[this.prng.int(this.recent.length)]!);
  }

  clientChaos(): void {
    const p = this.prng;
    if (p.int(6) === 0) this.cancel(this.randomTask());
    if (p.int(10) === 0) {
      const m = this.randomTask();
      const conn = 1 + p.int(WATCHER_CONNS);
      if (m !== undefined) {
        const known = this.s.task(m.id) !== undefined;
        const answer = this.call(() => this.s.watchTask(m.id, { conn, requestId: -this.step }), () => {
          if (known) this.watched(m, conn, -this.step);
        });
        this.check(answer === known, () => `watchTask(${m.id}) answered ${answer}, task known: ${known}`);
        this.stats.watches++;
      }
    }
    if (this.dlq.size > 0 && p.int(20) === 0) this.requeue([...this.dlq.values()][p.int(this.dlq.size)]!);
    if (p.int(40) === 0) {
      const m = this.randomTask();
      if (m !== undefined && !this.dlq.has(m.id)) this.check(!this.call(() => this.s.requeue(m.id, this.now)), () => `requeue of ${m.id} (not in the DLQ) succeeded`);
    }
    if (this.dlq.size > 0 && p.int(60) === 0) this.purge(p.int(10) === 0 ? [] : [[...this.dlq.keys()][p.int(this.dlq.size)]!]);
    if (p.int(8) === 0) this.submitWorkflow();
  }

  private cancel(m: TaskModel | undefined): void {
    if (m === undefined) return;
    const task = this.s.task(m.id);
    if (task !== undefined && !isFinal(task.state)) {
      m.cancelling = { leased: task.state === "leased" };
      if (task.state === "leased") this.expectedAborts.push({ workerId: task.workerId, taskId: task.id, attempt: task.attempt });
    }
    const before = task?.state;
    const after = this.call(() => this.s.cancel(m.id, this.now));
    const expected = before === undefined ? undefined : isFinal(before) ? before : "cancelled";
    this.check(after === expected, () => `cancel of ${m.id} in state ${before} returned ${after}, expected ${expected}`);
    this.check(m.cancelling === undefined, () => `cancel of ${m.id} was not reported as finished`);
  }

  /**
   * A dead letter that had run (or been ready) saw its parents complete: queued
   * at once (its runAt is past). One failed by a parent is placed like a new
   * task, and may fail again at once, reported by the requeue itself.
   */
  private requeue(m: TaskModel): void {
    const expected = !m.failedOnParent ? "queued" : m.parents.some((id) => this.model(id).gone) ? "failed" : this.expectedFirstState(m);
    const requeued = this.call(() => this.s.requeue(m.id, this.now), () => {
      this.dlq.delete(m.id);
      m.state = "unfinished";
      m.requeues++;
      this.totals.failed--;
    });
    this.check(requeued, () => `requeue of dead letter ${m.id} refused`);
    this.stats.requeues++;
    if (m.failedOnParent) this.stats.requeuesPlacedAgain++;
    if (m.failedOnParent && m.parents.some((id) => this.model(id).gone)) this.stats.requeuesParentGone++;
    this.check(this.s.task(m.id)?.state === expected, () => `requeued task ${m.id} is ${this.s.task(m.id)?.state}, expected ${expected} (parents ${m.parents})`);
  }

  private purge(ids: number[]): void {
    const victims = ids.length === 0 ? [...this.dlq.values()] : ids.map((id) => this.model(id));
    this.check(this.call(() => this.s.purge(ids)) === victims.length, () => `purge of ${ids.length === 0 ? "all" : ids} count wrong`);
    for (const m of victims) this.forget(m);
    this.stats.purged += victims.length;
  }

  private forget(m: TaskModel): void {
    m.gone = true;
    this.dlq.delete(m.id);
    this.recentlyGone.push(m.id);
    if (this.recentlyGone.length > PARENT_POOL) this.recentlyGone.shift();
  }

  // ------------------------------------------------------------ workers

  join(
    behaviour: Behaviour,
    tags: readonly string[] = this.prng.int(3) === 0 ? [] : this.randomTags(this.prng, 1),
    announced: readonly string[] | "any" = WORKER_TYPES[this.prng.int(WORKER_TYPES.length)]!,
  ): void {
    const types = announced === "any" ? undefined : announced;
    const id = this.nextWorkerId++;
    const slots = 1 + this.prng.int(4);
    this.call(() => this.s.workerJoined(id, slots, tags, this.now, types));
    this.workers.set(id, { id, slots, tags: new Set(tags), types: types === undefined ? undefined : new Set(types), behaviour, jobs: [], silentUntil: 0, lastHeartbeatAt: this.now });
  }

  /** The scheduler dropped (or was told to drop) this worker: in-flight answers may still arrive. */
  private drop(worker: SimWorker): void {
    this.workers.delete(worker.id);
    for (const job of worker.jobs) {
      if (this.prng.int(2) === 0) this.late.push({ workerId: worker.id, job, at: this.now + this.prng.int(800) });
    }
  }

  workerChaos(): void {
    const p = this.prng;
    if (this.workers.size < WORKERS_MAX && p.int(25) === 0) this.join((["reliable", "flaky", "slow"] as const)[p.int(3)]!);
    const some = (): SimWorker | undefined => (this.workers.size === 0 ? undefined : [...this.workers.values()][p.int(this.workers.size)]);
    const leaving = p.int(150) === 0 ? some() : undefined;
    if (leaving !== undefined) {
      this.drop(leaving); // first: the requeued tasks may be assigned in the same batch, never to it
      this.call(() => this.s.workerLeft(leaving.id, this.now));
      this.stats.left++;
    }
    const quiet = p.int(60) === 0 ? some() : undefined;
    // Sometimes shorter than workerTimeoutMs (leases may expire), sometimes longer (the worker is lost).
    if (quiet !== undefined) quiet.silentUntil = this.now + 100 + p.int(1400);
    // A worker serving several coordinators moves its credit: sometimes below what it runs here.
    const moved = p.int(40) === 0 ? some() : undefined;
    if (moved !== undefined) {
      const slots = p.int(5);
      if (slots < this.s.worker(moved.id)!.leased.size) this.stats.creditBelowLeases++;
      this.call(() => this.s.workerCredit(moved.id, slots));
      moved.slots = slots;
    }
    const forgetful = p.int(100) === 0 ? some() : undefined;
    if (forgetful !== undefined && forgetful.jobs.length > 0) {
      forgetful.jobs.splice(p.int(forgetful.jobs.length), 1); // a crashed job: no result, no longer named in heartbeats
      this.stats.jobsLost++;
    }
  }

  /** What each live worker does this step: heartbeats naming its jobs, and finished jobs. */
  work(drain: boolean): void {
    for (const w of [...this.workers.values()]) {
      if (!drain && this.now < w.silentUntil) continue;
      if (drain || this.now - w.lastHeartbeatAt >= 100) {
        this.call(() => this.s.heartbeat(w.id, this.now, w.jobs.map((j) => j.taskId)));
        w.lastHeartbeatAt = this.now;
      }
      const due = w.jobs.filter((j) => j.doneAt <= this.now);
      w.jobs = w.jobs.filter((j) => j.doneAt > this.now);
      for (const job of due) this.deliver(w.id, job, drain || w.behaviour !== "flaky" || this.prng.int(10) >= 3);
    }
    const arriving = this.late.filter((l) => l.at <= this.now);
    this.late = this.late.filter((l) => l.at > this.now);
    for (const l of arriving) this.deliver(l.workerId, l.job, this.prng.int(2) === 0);
  }

  /** Sends one result and checks it was accepted exactly when it matches the current lease. */
  private deliver(workerId: number, job: Job, ok: boolean): void {
    const task = this.s.task(job.taskId);
    const current = task !== undefined && task.state === "leased" && task.attempt === job.attempt && task.workerId === workerId && this.s.worker(workerId) !== undefined;
    const staleBefore = this.s.counters.staleResults;
    const output = new TextEncoder().encode(`${job.taskId}/${job.attempt}/${workerId}`);
    this.call(() => this.s.result(workerId, job.taskId, job.attempt, ok, output, this.now));
    const stale = this.s.counters.staleResults - staleBefore;
    this.check(stale === (current ? 0 : 1), () => `result ${job.taskId}/${job.attempt} from worker ${workerId}: expected ${current ? "accepted" : "stale"}, stale count moved by ${stale}`);
    if (!current) this.stats.stale++;
  }

  /** What a tick can change: workers and their leases, the queues' sizes, retention, the counters. */
  private tickFingerprint(): string {
    const s = this.s;
    const workers = [...s.allWorkers()].map((w) => [w.id, w.free, w.leased.size]);
    return JSON.stringify([s.counters, s.queuedCount, s.leasedTotal, s.waitingTotal, s.delayedTotal, s.retainedCount, s.dlqCount, workers]);
  }

  tickAndDispatch(): void {
    // An idle primary skips the ticks this says change nothing: check that they indeed change nothing.
    if (!this.s.tickWouldChange(this.now)) {
      const before = this.tickFingerprint();
      this.s.tick(this.now);
      const effects = this.s.takeReady();
      const quiet = effects.finished.length + effects.notices.length + effects.aborts.length + effects.lostWorkers.length + effects.assignments.size === 0;
      this.check(quiet && this.tickFingerprint() === before, () => `tick at ${this.now} changed the state though tickWouldChange said it would not`);
    }
    this.call(() => this.s.tick(this.now));
    while (this.retained.length > 0 && this.now - this.retained[0]!.finishedAt > OPTIONS.retainedMs) {
      this.forget(this.retained.shift()!);
      this.stats.agedOut++;
    }
    // Nor does it log a dispatch this says changes nothing, and it must be exact: a DISPATCH logged with
    // every slot busy (or only tasks no free worker has the tags for) is acknowledged by each backup, and
    // each acknowledgement pumps again: a replicated pair spun at ~33,000 such entries a second.
    const wouldChange = this.s.dispatchWouldChange(this.now);
    const before = this.tickFingerprint();
    this.call(() => this.s.dispatch(this.now));
    const changed = this.tickFingerprint() !== before;
    this.check(changed === wouldChange, () => `dispatch at ${this.now} ${changed ? "changed" : "did not change"} the state though dispatchWouldChange said ${wouldChange}`);
    if (!wouldChange && this.s.queuedCount > 0) this.stats.idleDispatches++;
  }

  // ------------------------------------------------------------ effects

  private absorb(ready: Ready): void {
    for (const id of ready.lostWorkers) {
      const w = this.workers.get(id) ?? this.fail(`worker ${id} reported lost but it is not connected`);
      this.check(this.now - w.lastHeartbeatAt > OPTIONS.workerTimeoutMs || this.now < w.silentUntil, () => `worker ${id} reported lost though it was heard from`);
      this.stats.lost++;
      this.drop(w);
    }
    for (const [workerId, batch] of ready.assignments) {
      const w = this.workers.get(workerId) ?? this.fail(`tasks assigned to worker ${workerId}, which is gone`);
      let previous: [number, number, number] | undefined;
      for (const task of batch) {
        const key = rankKey(task);
        this.check(previous === undefined || rankBefore(previous, key), () => `worker ${workerId} got task ${task.id} (${key}) after a worse one (${previous})`);
        previous = key;
        this.assigned(w, task);
      }
    }
    for (const task of ready.finished) this.finished(task);
    this.check(JSON.stringify(ready.aborts) === JSON.stringify(this.expectedAborts), () => `aborts ${JSON.stringify(ready.aborts)}, expected ${JSON.stringify(this.expectedAborts)}`);
    for (const abort of ready.aborts) {
      const w = this.workers.get(abort.workerId) ?? this.fail(`abort for worker ${abort.workerId}, which is gone`);
      // Half the time the worker stops in time; otherwise its result arrives and must be stale.
      if (this.prng.int(2) === 0) w.jobs = w.jobs.filter((j) => j.taskId !== abort.taskId || j.attempt !== abort.attempt);
      this.stats.aborts++;
    }
    this.expectedAborts = [];
    const got = sortNotices(ready.notices.map((n): Notice => [n.task.id, n.watcher.conn, n.watcher.requestId]));
    const want = sortNotices(this.expectedNotices);
    this.check(JSON.stringify(got) === JSON.stringify(want), () => `notices ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
    this.expectedNotices = [];
  }

  private assigned(w: SimWorker, task: Task): void {
    const m = this.model(task.id);
    this.check(m.state === "unfinished", () => `task ${task.id} assigned after it ended (${m.state})`);
    const previous = m.leases.at(-1)?.attempt ?? 0;
    this.check(task.attempt === previous + 1, () => `task ${task.id} leased with attempt ${task.attempt} after attempt ${previous}: fencing tokens must increase by one`);
    this.check(task.attempt - task.attemptBase <= m.maxAttempts, () => `task ${task.id} attempt ${task.attempt} (base ${task.attemptBase}) over maxAttempts ${m.maxAttempts}`);

    this.check(m.deadline === 0 || m.deadline > this.now, () => `task ${task.id} leased at ${this.now}, past its deadline ${m.deadline}`);
    this.check(m.tags.every((t) => w.tags.has(t)), () => `task ${task.id} needing [${m.tags}] leased to worker ${w.id} with [${[...w.tags]}]`);
    // Only dispatch leases, and only into a free slot: right after it a worker holds no more leases than its credit.
    this.check(this.s.worker(w.id)!.leased.size <= w.slots, () => `worker ${w.id} holds ${this.s.worker(w.id)!.leased.size} leases on a credit of ${w.slots}`);
    this.check(handles(w, m), () => `task ${task.id} of type ${m.type} leased to worker ${w.id}, which handles only [${[...w.types ?? []]}]`);
    // Requeued dead letters too: a requeue keeps the runAt and waits for parents like a new task.
    this.check(this.now >= m.runAt, () => `task ${task.id} leased at ${this.now} before its runAt ${m.runAt}`);
    this.check(m.parents.every((id) => this.model(id).state === "completed"), () => `task ${task.id} leased before its parents ${m.parents} all completed`);
    if (task.attempt - 1 > task.attemptBase) {
      const failure = task.errors.at(-1)!;
      const wait = m.backoff === undefined ? 0 : retryDelayMs(m.backoff, task.id, task.attempt - 1 - task.attemptBase);
      this.check(failure.attempt === task.attempt - 1 && this.now >= failure.at + wait, () => `task ${task.id} retried at ${this.now}, before ${failure.at} + backoff ${wait}`);
      if (wait > 0) this.stats.backoffWaits++;
      this.stats.retried++;
    }
    if (m.tags.length > 0) this.stats.taggedLeases++;
    if (w.types !== undefined) this.stats.typedLeases++;
    if (m.runAt > 0 && task.attempt === 1) this.stats.delayedLeases++;
    m.leases.push({ attempt: task.attempt, workerId: w.id });
    const p = this.prng;
    let duration = 1 + p.int(120);
    if (w.behaviour === "slow" && p.int(3) === 0) duration = OPTIONS.leaseMs + p.int(2000); // may run past its timeout
    w.jobs.push({ taskId: task.id, attempt: task.attempt, doneAt: this.now + duration });
  }

  private finished(task: Task): void {
    const m = this.model(task.id);
    this.check(m.state === "unfinished", () => `task ${task.id} ended twice (${m.state}, then ${task.state})`);
    this.check(isFinal(task.state), () => `task ${task.id} reported finished in state ${task.state}`);
    const state = task.state as Final;
    if (state === "failed") this.checkFailure(m, task);
    if (state === "cancelled") this.check(m.cancelling !== undefined, () => `task ${task.id} cancelled without a cancel`);
    const attemptsWithErrors = state === "completed" || (state === "cancelled" && m.cancelling!.leased) ? task.attempt - 1 : task.attempt;
    const errorsExpected = Math.min(ERRORS_KEPT_MAX, attemptsWithErrors + m.freeErrors);
    this.check(task.errors.length === errorsExpected, () => `task ${task.id} ${state} at attempt ${task.attempt} keeps ${task.errors.length} errors, expected ${errorsExpected}`);
    if (state === "completed") {
      const last = m.leases.at(-1);
      const output = new TextDecoder().decode(task.output);
      // The output must come from the current lease: the fencing token held.
      this.check(last !== undefined && output === `${task.id}/${last.attempt}/${last.workerId}`, () => `task ${task.id} completed with output "${output}" from a stale lease`);
    }
    m.state = state;
    m.finishedAt = this.now;
    m.cancelling = undefined;
    this.totals[state]++;
    for (const [conn, requestId] of m.watchers) this.expectedNotices.push([m.id, conn, requestId]);
    m.watchers = [];
    if (state === "failed") {
      this.dlq.set(m.id, m);
      while (this.dlq.size > OPTIONS.dlqMax) {
        this.forget(this.dlq.values().next().value!);
        this.stats.dlqEvicted++;
      }
    } else {
      this.retained.push(m);
      while (this.retained.length > OPTIONS.retainedMax) this.forget(this.retained.shift()!);
    }
  }

  /** Why a task failed: out of attempts, or without an attempt (missed deadline, failed parent). */
  private checkFailure(m: TaskModel, task: Task): void {
    const last = task.errors.at(-1) ?? this.fail(`task ${task.id} failed without an error`);
    this.check(last.attempt === task.attempt && last.at === this.now, () => `task ${task.id} failed with error record ${JSON.stringify(last)}`);
    m.failedOnParent = last.code === "E_DEPENDENCY";
    if (last.workerId !== 0) {
      this.check(task.attempt - task.attemptBase === m.maxAttempts, () => `task ${task.id} failed after ${task.attempt - task.attemptBase} of ${m.maxAttempts} attempts`);
      return;
    }
    m.freeErrors++;
    if (last.code === "E_DEADLINE") {
      this.check(m.deadline !== 0 && m.deadline <= this.now, () => `task ${task.id} failed E_DEADLINE at ${this.now} with deadline ${m.deadline}`);
      this.totals.deadlineMissed++;
    } else if (last.code === "E_DEPENDENCY") {
      // A requeued task also fails on a parent no longer held (evicted or purged): its outcome is unknown.
      this.check(m.parents.some((id) => ["failed", "cancelled"].includes(this.model(id).state) || (m.requeues > 0 && this.model(id).gone)),
        () => `task ${task.id} failed E_DEPENDENCY but no parent of ${m.parents} failed`);
      this.stats.dependencyFailures++;
    } else {
      this.fail(`task ${task.id} failed without an attempt: ${last.code}: ${last.message}`);
    }
  }

  // ------------------------------------------------------------ invariants

  checkInvariants(): void {
    const s = this.s;
    // The core's own full consistency check first (an AssertionError, reported with the seed by the test).
    s.checkInvariants();
    const leasedBy = new Map<number, number>();
    for (const w of s.allWorkers()) {
      this.check(this.workers.has(w.id), () => `scheduler knows worker ${w.id}, which is gone`);
      // More leases than slots only after its credit shrank (assigned() checks each new lease fits).
      this.check(w.slots === this.workers.get(w.id)!.slots, () => `worker ${w.id} has ${w.slots} slots, its credit is ${this.workers.get(w.id)!.slots}`);
      this.check(this.now - w.lastSeenAt <= OPTIONS.workerTimeoutMs, () => `worker ${w.id} silent since ${w.lastSeenAt} but not declared lost`);
      this.check(w.free === w.slots - w.leased.size, () => `worker ${w.id} free=${w.free}, slots=${w.slots}, leased=${w.leased.size}`);
      for (const t of w.leased) {
        this.check(!leasedBy.has(t.id), () => `task ${t.id} leased by two workers`);
        leasedBy.set(t.id, w.id);
      }
    }
    this.check([...s.allWorkers()].length === this.workers.size, () => `scheduler has ${[...s.allWorkers()].length} workers, simulation ${this.workers.size}`);
    const count = { waiting: 0, delayed: 0, queued: 0, leased: 0, unmatched: 0 };
    for (const m of this.tasks.values()) {
      const task = s.task(m.id);
      if (m.gone || task === undefined) {
        this.check(m.gone && task === undefined, () => `task ${m.id}: gone=${m.gone} but the scheduler ${task === undefined ? "forgot it" : "holds it"}`);
        continue;
      }
      if (m.state !== "unfinished") {
        this.check(task.state === m.state, () => `task ${m.id} is ${task.state} but ended ${m.state}`);
        this.check(!leasedBy.has(m.id), () => `ended task ${m.id} still leased`);
        continue;
      }
      this.checkUnfinished(m, task, leasedBy);
      count[task.state as "waiting" | "delayed" | "queued" | "leased"]++;
      if (task.state === "queued" && ![...this.workers.values()].some((w) => m.tags.every((t) => w.tags.has(t)) && handles(w, m))) {
        count.unmatched++;
        if ([...this.workers.values()].some((w) => m.tags.every((t) => w.tags.has(t)))) this.stats.unmatchedByType++;
      }
    }
    this.check(count.queued === s.queuedCount && count.leased === s.leasedTotal && count.waiting === s.waitingTotal && count.delayed === s.delayedTotal,
      () => `states counted ${JSON.stringify(count)}, scheduler says queued ${s.queuedCount} leased ${s.leasedTotal} waiting ${s.waitingTotal} delayed ${s.delayedTotal}`);
    this.check(count.unmatched === s.unmatchedCount, () => `${count.unmatched} queued tasks no worker can take, unmatchedCount says ${s.unmatchedCount}`);
    this.check(leasedBy.size === count.leased, () => `${leasedBy.size} tasks in workers' lease sets, ${count.leased} in state leased`);
    const c = s.counters;
    const unfinished = count.waiting + count.delayed + count.queued + count.leased;
    this.check(c.submitted === this.tasks.size, () => `counters.submitted=${c.submitted}, ${this.tasks.size} tasks created`);
    this.check(c.submitted === c.completed + c.failed + c.cancelled + unfinished, () => `submitted ${c.submitted} != completed ${c.completed} + failed ${c.failed} + cancelled ${c.cancelled} + unfinished ${unfinished}`);
    for (const k of ["completed", "failed", "cancelled", "deadlineMissed"] as const) this.check(c[k] === this.totals[k], () => `counters.${k}=${c[k]}, model ${this.totals[k]}`);
    this.check(c.rejectedQueueFull === this.totals.refused && c.duplicates === this.stats.duplicates, () => `rejectedQueueFull/duplicates ${c.rejectedQueueFull}/${c.duplicates}, model ${this.totals.refused}/${this.stats.duplicates}`);
    this.check(s.retainedCount === this.retained.length, () => `retained ${s.retainedCount}, model ${this.retained.length}`);
    const dead = s.deadLetters(0, OPTIONS.dlqMax + 1).map((t) => t.id);
    this.check(JSON.stringify(dead) === JSON.stringify([...this.dlq.keys()]), () => `dead letters ${dead}, model ${[...this.dlq.keys()]}`);
  }

  private checkUnfinished(m: TaskModel, task: Task, leasedBy: Map<number, number>): void {
    const pending = m.parents.filter((id) => this.model(id).state !== "completed");
    switch (task.state) {
      case "waiting":
        this.check(task.waitingOn === pending.length && pending.length > 0, () => `task ${m.id} waits on ${task.waitingOn}, parents not completed: ${pending}`);
        break;
      case "delayed":
        this.check(task.runAt > this.now, () => `task ${m.id} still delayed after its runAt ${task.runAt}`);
        break;
      case "queued":
        this.check(!leasedBy.has(m.id), () => `queued task ${m.id} is in worker ${leasedBy.get(m.id)}'s leases`);
        this.check(pending.length === 0, () => `task ${m.id} queued before its parents ${pending} completed`);
        break;
      case "leased":
        this.check(leasedBy.get(m.id) === task.workerId, () => `leased task ${m.id} names worker ${task.workerId} but is held by ${leasedBy.get(m.id)}`);
        this.check(task.leaseExpiresAt <= task.leasedAt + task.timeoutMs, () => `task ${m.id} lease runs past its timeout`);
        // tick(now) ran this step: no lease it left in place may have expired.
        this.check(task.leaseExpiresAt > this.now, () => `task ${m.id} still leased after its lease expired at ${task.leaseExpiresAt}`);
        break;
      default:
        this.fail(`unfinished task ${m.id} in state ${task.state}`);
    }
  }

  unfinished(): number {
    let n = 0;
    for (const m of this.tasks.values()) if (m.state === "unfinished") n++;
    return n;
  }

  // ------------------------------------------------------------ phases

  run(): void {
    this.join("reliable", []);
    for (this.step = 0; this.step < CHAOS_STEPS; this.step++) {
      this.now += 1 + this.prng.int(40);
      if (this.prng.int(4) !== 0) this.submitSome();
      this.clientChaos();
      this.workerChaos();
      this.work(false);
      this.tickAndDispatch();
      this.checkInvariants();
    }
    // Drain: no new work, every worker reliable and talkative, and one that has every tag and runs any type.
    for (const w of this.workers.values()) {
      w.behaviour = "reliable";
      w.silentUntil = 0;
    }
    this.join("reliable", TAGS, "any");
    const drainEnd = this.step + DRAIN_STEPS_MAX;
    for (; this.unfinished() > 0; this.step++) {
      if (this.step >= drainEnd) this.fail(`${this.unfinished()} tasks still unfinished after ${DRAIN_STEPS_MAX} drain steps with reliable workers`);
      this.now += 1 + this.prng.int(40);
      this.work(true);
      this.tickAndDispatch();
      this.checkInvariants();
    }
    const s = this.s;
    this.check(s.queuedCount + s.leasedTotal + s.waitingTotal + s.delayedTotal === 0, () => `drained, but the scheduler still holds unfinished tasks`);
    for (const m of this.tasks.values()) this.check(m.watchers.length === 0, () => `task ${m.id}: watchers never told`);
  }
}

const envSeed = process.env.SIM_SEED;
const SEEDS = envSeed !== undefined ? [Number(envSeed)] : [1, 2, 3, 4, 42, 1337, 0xbeef, 2 ** 31 + 7];

describe("scheduler simulation", () => {
  for (const seed of SEEDS) {
    test(`seed=${seed}: invariants hold through chaos, and every task ends once workers are reliable`, () => {
      const sim = new Simulation(seed);
      try {
        sim.run();
      } catch (err) {
        if (err instanceof SimFailure) throw err;
        throw new Error(`seed=${seed} step=${sim.step} now=${sim.now}: ${String(err)}`, { cause: err });
      }
      // The run must have exercised what it claims to.
      const c = sim.s.counters;
      const st = sim.stats;
      const coverage: Array<[string, number, number]> = [
        ["submitted", c.submitted, 1000], ["completed", c.completed, 500], ["failed", c.failed, 1], ["retried", c.retried, 50],
        ["expiredLeases", c.expiredLeases, 10], ["staleResults", c.staleResults, 10], ["duplicates", c.duplicates, 10],
        ["rejectedQueueFull", c.rejectedQueueFull, 1], ["workers lost", st.lost, 1], ["workers left", st.left, 1],
        ["cancelled", c.cancelled, 20], ["aborts", st.aborts, 5], ["deadlineMissed", c.deadlineMissed, 5], ["dependency failures", st.dependencyFailures, 5],
        ["unknown parents", st.unknownParent, 1], ["workflows", st.workflows, 20], ["cycles", st.cycles, 2], ["requeues", st.requeues, 5], ["requeues placed again", st.requeuesPlacedAgain, 20],
        ["requeues with a parent gone", st.requeuesParentGone, 3], ["workflow retries", st.workflowRetries, 50], ["workflow keys refused", st.workflowKeysRefused, 3],
        ["purged", st.purged, 1], ["dlq evictions", st.dlqEvicted, 1], ["aged out", st.agedOut, 10], ["tagged leases", st.taggedLeases, 50], ["leases to workers announcing types", st.typedLeases, 100], ["queued tasks waiting only for a type", st.unmatchedByType, 20],
        ["credit moved below a worker's leases", st.creditBelowLeases, 3],
        ["delayed leases", st.delayedLeases, 20], ["backoff waits", st.backoffWaits, 10], ["jobs lost", st.jobsLost, 1], ["watches", st.watches, 20],
        ["dispatches with tasks queued and nothing to do", st.idleDispatches, 20],
      ];
      for (const [what, count, least] of coverage) sim.check(count >= least, () => `coverage: ${what} = ${count}, expected at least ${least}`);
      expect(sim.unfinished()).toBe(0);
    }, 60_000);
  }
});

/** Whether the worker runs tasks of this type (one that announced no types runs any). */
function handles(w: SimWorker, m: TaskModel): boolean {
  return w.types === undefined || w.types.has(m.type);
}
