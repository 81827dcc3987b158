// Seeded randomized simulation of the scheduler core with unreliable workers
// (TigerBeetle VOPR style): workers join, leave, go silent, answer late or fail,
// while time advances; every invariant is checked after every step, and a drain
// phase with reliable workers must finish every task. Reproduce with the seed
// printed in the failure: SIM_SEED=N bun test test/sim

import { describe, expect, test } from "bun:test";
import { Prng } from "../../src/core/prng.ts";
import { Scheduler, type SchedulerOptions } from "../../src/core/scheduler.ts";
import type { Task } from "../../src/core/task.ts";

const OPTIONS: SchedulerOptions = {
  shard: 2,
  queueMax: 200,
  retainedMax: 250,
  leaseMs: 300,
  workerTimeoutMs: 700,
  defaultTimeoutMs: 2000,
  defaultMaxAttempts: 4,
};

const CHAOS_STEPS = 5000;
/** A bound on the drain phase: reliable workers must finish everything well before it. */
const DRAIN_STEPS_MAX = 4000;
const WORKERS_MAX = 6;
const KEY_POOL = 40;

type Behaviour = "reliable" | "flaky" | "slow";

interface Job {
  taskId: number;
  attempt: number;
  doneAt: number;
}

interface SimWorker {
  id: number;
  slots: number;
  behaviour: Behaviour;
  jobs: Job[];
  silentUntil: number;
  lastHeartbeatAt: number;
}

/** A result still on the wire from a worker the scheduler dropped. */
interface LateResult {
  workerId: number;
  job: Job;
  at: number;
}

interface TaskModel {
  id: number;
  maxAttempts: number;
  /** Attempt numbers handed out, in order, with the worker of each. */
  leases: Array<{ attempt: number; workerId: number }>;
  finished: "completed" | "failed" | undefined;
  /** Finished reports still expected for duplicates submitted with a watcher. */
  reemitsExpected: number;
}

class SimFailure extends Error {}

class Simulation {
  readonly prng: Prng;
  readonly s = new Scheduler(OPTIONS);
  now = 0;
  step = 0;
  private nextWorkerId = 1;
  readonly workers = new Map<number, SimWorker>();
  private late: LateResult[] = [];
  readonly tasks = new Map<number, TaskModel>();
  private readonly keys = new Map<string, number>();
  private finishedTotal = 0;
  private completedTotal = 0;
  private failedTotal = 0;
  private refused = 0;
  stats = { stale: 0, lost: 0, left: 0, duplicates: 0, retried: 0 };

  constructor(readonly seed: number) {
    this.prng = new Prng(seed);
  }

  fail(message: string): never {
    throw new SimFailure(`seed=${this.seed} step=${this.step} now=${this.now}: ${message}`);
  }

  check(condition: boolean, message: () => string): void {
    if (!condition) this.fail(message());
  }

  // ------------------------------------------------------------ events

  submitSome(): void {
    const p = this.prng;
    // Now and then a burst, so the queue fills and E_QUEUE_FULL is exercised.
    for (let n = p.int(150) === 0 ? 150 : p.int(3); n > 0; n--) {
      const useKey = p.int(4) === 0;
      const key = useKey ? `k${p.int(KEY_POOL)}` : "";
      const watcher = p.int(2);
      const knownId = useKey ? this.keys.get(key) : undefined;
      const knownTask = knownId === undefined ? undefined : this.s.task(knownId);
      const full = this.s.queuedCount + this.s.leasedTotal >= OPTIONS.queueMax;
      const maxAttempts = p.int(3) === 0 ? 0 : 1 + p.int(5);
      const outcome = this.s.submit({
        type: "sim", payload: new Uint8Array(0), priority: p.int(4), maxAttempts,
        timeoutMs: p.int(3) === 0 ? 0 : 150 + p.int(3000), idempotencyKey: key, watcher, watchRequestId: this.step,
      }, this.now);
      if (knownTask !== undefined) {
        this.check(outcome.ok && outcome.duplicate && outcome.taskId === knownId, () => `key ${key} of live task ${knownId} gave ${JSON.stringify(outcome)}`);
        this.stats.duplicates++;
        const model = this.tasks.get(knownId!)!;
        if (watcher !== 0 && model.finished !== undefined) model.reemitsExpected++;
        continue;
      }
      if (full) {
        this.check(!outcome.ok && outcome.code === "E_QUEUE_FULL", () => `queue full but submit gave ${JSON.stringify(outcome)}`);
        this.refused++;
        continue;
      }
      if (!outcome.ok) this.fail(`submit refused with room: ${outcome.code} ${outcome.message}`);
      this.check(!outcome.duplicate, () => `new task ${outcome.taskId} reported as a duplicate`);
      this.check(!this.tasks.has(outcome.taskId), () => `task id ${outcome.taskId} handed out twice`);
      this.tasks.set(outcome.taskId, {
        id: outcome.taskId, maxAttempts: maxAttempts > 0 ? maxAttempts : OPTIONS.defaultMaxAttempts,
        leases: [], finished: undefined, reemitsExpected: 0,
      });
      if (useKey) this.keys.set(key, outcome.taskId);
    }
  }

  join(behaviour: Behaviour): void {
    const id = this.nextWorkerId++;
    const slots = 1 + this.prng.int(4);
    this.s.workerJoined(id, slots, [], this.now);
    this.workers.set(id, { id, slots, behaviour, jobs: [], silentUntil: 0, lastHeartbeatAt: this.now });
  }

  /** The scheduler dropped (or was told to drop) this worker: in-flight answers may still arrive. */
  private drop(worker: SimWorker): void {
    this.workers.delete(worker.id);
    for (const job of worker.jobs) {
      if (this.prng.int(2) === 0) this.late.push({ workerId: worker.id, job, at: this.now + this.prng.int(800) });
    }
  }

  chaos(): void {
    const p = this.prng;
    if (this.workers.size < WORKERS_MAX && p.int(25) === 0) this.join((["reliable", "flaky", "slow"] as const)[p.int(3)]!);
    if (this.workers.size > 0 && p.int(150) === 0) {
      const w = [...this.workers.values()][p.int(this.workers.size)]!;
      this.s.workerLeft(w.id, this.now);
      this.stats.left++;
      this.drop(w);
    }
    if (this.workers.size > 0 && p.int(60) === 0) {
      const w = [...this.workers.values()][p.int(this.workers.size)]!;
      // Sometimes shorter than workerTimeoutMs (leases may expire), sometimes longer (the worker is lost).
      w.silentUntil = this.now + 100 + p.int(1400);
    }
  }

  /** What each live worker does this step: heartbeats and finished jobs. */
  work(drain: boolean): void {
    for (const w of [...this.workers.values()]) {
      if (!drain && this.now < w.silentUntil) continue;
      if (drain || this.now - w.lastHeartbeatAt >= 100) {
        this.s.heartbeat(w.id, this.now);
        w.lastHeartbeatAt = this.now;
      }
      const due = w.jobs.filter((j) => j.doneAt <= this.now);
      w.jobs = w.jobs.filter((j) => j.doneAt > this.now);
      for (const job of due) {
        const ok = drain || w.behaviour !== "flaky" || this.prng.int(10) >= 3;
        this.deliver(w.id, job, ok);
      }
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
    this.s.result(workerId, job.taskId, job.attempt, ok, output, this.now);
    const stale = this.s.counters.staleResults - staleBefore;
    this.check(stale === (current ? 0 : 1), () => `result ${job.taskId}/${job.attempt} from worker ${workerId}: expected ${current ? "accepted" : "stale"}, stale count moved by ${stale}`);
    if (!current) this.stats.stale++;
  }

  tickAndDispatch(drain: boolean): void {
    this.s.tick(this.now);
    this.s.dispatch(this.now);
    const ready = this.s.takeReady();
    for (const id of ready.lostWorkers) {
      const w = this.workers.get(id);
      this.check(w !== undefined, () => `worker ${id} reported lost but it is not connected`);
      this.check(this.now - w!.lastHeartbeatAt > OPTIONS.workerTimeoutMs || this.now < w!.silentUntil, () => `worker ${id} reported lost though it was heard from`);
      this.stats.lost++;
      this.drop(w!);
    }
    for (const [workerId, batch] of ready.assignments) {
      const w = this.workers.get(workerId);
      if (w === undefined) this.fail(`tasks assigned to worker ${workerId}, which is gone`);
      for (const task of batch) this.assigned(w, task, drain);
    }
    for (const task of ready.finished) this.finished(task);
  }

  private assigned(w: SimWorker, task: Task, drain: boolean): void {
    const model = this.tasks.get(task.id);
    if (model === undefined) this.fail(`unknown task ${task.id} assigned`);
    this.check(model.finished === undefined, () => `task ${task.id} assigned after it finished (${model.finished})`);
    const previous = model.leases.at(-1)?.attempt ?? 0;
    this.check(task.attempt === previous + 1, () => `task ${task.id} leased with attempt ${task.attempt} after attempt ${previous}: fencing tokens must increase by one`);
    this.check(task.attempt <= model.maxAttempts, () => `task ${task.id} attempt ${task.attempt} over maxAttempts ${model.maxAttempts}`);
    model.leases.push({ attempt: task.attempt, workerId: w.id });
    if (task.attempt > 1) this.stats.retried++;
    const p = this.prng;
    let duration = 1 + p.int(120);
    if (!drain && w.behaviour === "slow" && p.int(3) === 0) duration = OPTIONS.leaseMs + p.int(2000); // answers after its lease (and maybe its timeout)
    w.jobs.push({ taskId: task.id, attempt: task.attempt, doneAt: this.now + duration });
  }

  private finished(task: Task): void {
    const model = this.tasks.get(task.id);
    if (model === undefined) this.fail(`unknown task ${task.id} reported finished`);
    this.check(task.state === "completed" || task.state === "failed", () => `task ${task.id} reported finished in state ${task.state}`);
    if (model.finished !== undefined) {
      // Only a duplicate submission with a watcher may report a finished task again.
      this.check(model.reemitsExpected > 0, () => `task ${task.id} finished twice (${model.finished}, then ${task.state})`);
      this.check(task.state === model.finished, () => `task ${task.id} changed from ${model.finished} to ${task.state}`);
      model.reemitsExpected--;
      return;
    }
    model.finished = task.state as "completed" | "failed";
    this.finishedTotal++;
    const last = model.leases.at(-1);
    this.check(last !== undefined && last.attempt === task.attempt, () => `task ${task.id} finished at attempt ${task.attempt} but the last lease was ${last?.attempt}`);
    const errorsExpected = Math.min(16, task.state === "completed" ? task.attempt - 1 : task.attempt);
    this.check(task.errors.length === errorsExpected, () => `task ${task.id} ${task.state} after ${task.attempt} attempts keeps ${task.errors.length} errors, expected ${errorsExpected}`);
    if (task.state === "completed") {
      this.completedTotal++;
      const output = new TextDecoder().decode(task.output);
      // The output must come from the current lease: the fencing token held.
      this.check(output === `${task.id}/${last!.attempt}/${last!.workerId}`, () => `task ${task.id} completed with output "${output}" from a stale lease (current ${last!.attempt} on ${last!.workerId})`);
    } else {
      this.failedTotal++;
      this.check(task.attempt === model.maxAttempts, () => `task ${task.id} failed after ${task.attempt} of ${model.maxAttempts} attempts`);
    }
  }

  // ------------------------------------------------------------ invariants

  checkInvariants(): void {
    const s = this.s;
    let queued = 0;
    let leased = 0;
    const leasedBy = new Map<number, number>();
    for (const w of s.allWorkers()) {
      this.check(this.workers.has(w.id), () => `scheduler knows worker ${w.id}, which is gone`);
      this.check(w.leased.size <= w.slots, () => `worker ${w.id} holds ${w.leased.size} leases with ${w.slots} slots`);
      this.check(this.now - w.lastSeenAt <= OPTIONS.workerTimeoutMs, () => `worker ${w.id} silent since ${w.lastSeenAt} but not declared lost`);
      this.check(w.free === w.slots - w.leased.size, () => `worker ${w.id} free=${w.free}, slots=${w.slots}, leased=${w.leased.size}`);
      for (const t of w.leased) {
        this.check(!leasedBy.has(t.id), () => `task ${t.id} leased by two workers`);
        leasedBy.set(t.id, w.id);
      }
    }
    this.check([...s.allWorkers()].length === this.workers.size, () => `scheduler has ${[...s.allWorkers()].length} workers, simulation ${this.workers.size}`);
    for (const model of this.tasks.values()) {
      const task = s.task(model.id);
      if (task === undefined) {
        this.check(model.finished !== undefined, () => `unfinished task ${model.id} vanished`);
        continue;
      }
      switch (task.state) {
        case "queued":
          queued++;
          this.check(model.finished === undefined, () => `finished task ${task.id} is queued again`);
          this.check(!leasedBy.has(task.id), () => `queued task ${task.id} is in worker ${leasedBy.get(task.id)}'s leases`);
          break;
        case "leased":
          leased++;
          this.check(model.finished === undefined, () => `finished task ${task.id} is leased again`);
          this.check(leasedBy.get(task.id) === task.workerId, () => `leased task ${task.id} names worker ${task.workerId} but is held by ${leasedBy.get(task.id)}`);
          this.check(task.leaseExpiresAt <= task.leasedAt + task.timeoutMs, () => `task ${task.id} lease runs past its timeout`);
          // tick(now) ran this step: no lease it left in place may have expired.
          this.check(task.leaseExpiresAt > this.now, () => `task ${task.id} still leased after its lease expired at ${task.leaseExpiresAt}`);
          this.check(task.attempt <= task.maxAttempts, () => `task ${task.id} attempt ${task.attempt} > maxAttempts ${task.maxAttempts}`);
          break;
        case "completed":
        case "failed":
          this.check(model.finished === task.state, () => `task ${task.id} is ${task.state} but was reported ${model.finished ?? "unfinished"}`);
          this.check(!leasedBy.has(task.id), () => `finished task ${task.id} still leased`);
          break;
        default:
          this.fail(`task ${(task as Task).id} in unknown state ${(task as Task).state}`);
      }
    }
    this.check(queued === s.queuedCount, () => `${queued} tasks queued, queuedCount says ${s.queuedCount}`);
    this.check(leased === s.leasedTotal, () => `${leased} tasks leased, leasedTotal says ${s.leasedTotal}`);
    this.check(leasedBy.size === leased, () => `${leasedBy.size} tasks in workers' lease sets, ${leased} in state leased`);
    const c = s.counters;
    this.check(c.submitted === this.tasks.size, () => `counters.submitted=${c.submitted}, ${this.tasks.size} tasks submitted`);
    this.check(c.submitted === c.completed + c.failed + queued + leased, () => `submitted ${c.submitted} != completed ${c.completed} + failed ${c.failed} + queued ${queued} + leased ${leased}`);
    this.check(c.completed === this.completedTotal && c.failed === this.failedTotal, () => `counters completed/failed ${c.completed}/${c.failed}, reported ${this.completedTotal}/${this.failedTotal}`);
    this.check(c.rejectedQueueFull === this.refused, () => `rejectedQueueFull ${c.rejectedQueueFull}, expected ${this.refused}`);
    this.check(s.retainedCount === Math.min(this.finishedTotal, OPTIONS.retainedMax), () => `retained ${s.retainedCount} of ${this.finishedTotal} finished`);
  }

  unfinished(): number {
    return this.tasks.size - this.finishedTotal;
  }

  // ------------------------------------------------------------ phases

  run(): void {
    this.join("reliable");
    for (this.step = 0; this.step < CHAOS_STEPS; this.step++) {
      this.now += 1 + this.prng.int(40);
      if (this.prng.int(4) !== 0) this.submitSome();
      this.chaos();
      this.work(false);
      this.tickAndDispatch(false);
      this.checkInvariants();
    }
    // Drain: no new work, every worker reliable and talkative; make sure there is one.
    for (const w of this.workers.values()) {
      w.behaviour = "reliable";
      w.silentUntil = 0;
    }
    if (this.workers.size === 0) this.join("reliable");
    const drainEnd = this.step + DRAIN_STEPS_MAX;
    for (; this.unfinished() > 0; this.step++) {
      if (this.step >= drainEnd) this.fail(`${this.unfinished()} tasks still unfinished after ${DRAIN_STEPS_MAX} drain steps with reliable workers`);
      this.now += 1 + this.prng.int(40);
      this.work(true);
      this.tickAndDispatch(true);
      this.checkInvariants();
    }
    this.check(this.s.queuedCount === 0 && this.s.leasedTotal === 0, () => `drained, but ${this.s.queuedCount} queued and ${this.s.leasedTotal} leased`);
    for (const model of this.tasks.values()) this.check(model.reemitsExpected === 0, () => `task ${model.id}: ${model.reemitsExpected} expected re-reports never came`);
  }
}

const envSeed = process.env.SIM_SEED;
const SEEDS = envSeed !== undefined ? [Number(envSeed)] : [1, 2, 3, 4, 42, 1337, 0xbeef, 2 ** 31 + 7];

describe("scheduler simulation", () => {
  for (const seed of SEEDS) {
    test(`seed=${seed}: invariants hold through chaos, and every task finishes once workers are reliable`, () => {
      const sim = new Simulation(seed);
      try {
        sim.run();
      } catch (err) {
        if (err instanceof SimFailure) throw err;
        throw new Error(`seed=${seed} step=${sim.step} now=${sim.now}: ${String(err)}`, { cause: err });
      }
      // The run must have exercised what it claims to: failures, expiries, losses, stale results, duplicates, a full queue.
      const c = sim.s.counters;
      const coverage: Array<[string, number, number]> = [
        ["submitted", c.submitted, 1000], ["completed", c.completed, 500], ["failed", c.failed, 1], ["retried", c.retried, 50],
        ["expiredLeases", c.expiredLeases, 10], ["staleResults", c.staleResults, 10], ["duplicates", c.duplicates, 10],
        ["rejectedQueueFull", c.rejectedQueueFull, 1], ["workers lost", sim.stats.lost, 1], ["workers left", sim.stats.left, 1],
      ];
      for (const [what, count, least] of coverage) sim.check(count >= least, () => `coverage: ${what} = ${count}, expected at least ${least}`);
      expect(sim.unfinished()).toBe(0);
    }, 30_000);
  }
});
