// The replication simulation (TigerBeetle VOPR style): one shard's replica set
// (replication-shard.ts) with workers and clients around it, a simulated clock,
// one seeded PRNG, and crashes at random points: the primary (its unreplicated
// tail is lost), a backup, a restart as a new backup (snapshot, then the log).
// Invariants are checked after every step; failures say `seed=N step=S`.

import { Prng } from "../../src/core/prng.ts";
import type { SchedulerOptions } from "../../src/core/scheduler.ts";
import type { SchedulerState } from "../../src/core/scheduler-state.ts";
import type { Task } from "../../src/core/task.ts";
import { Clients, Workers, type ActorContext } from "./replication-actors.ts";
import { KNOWN_BUGS } from "./replication-known-bugs.ts";
import { SimNode } from "./replication-node.ts";
import { Shard, type EffectSink, type HeldReply, type ShardTiming } from "./replication-shard.ts";
import { diffSchedulerStates, equalBytes, outputFor, text } from "./replication-wire.ts";

/** Retention far above what a run submits: an acknowledged task must never be missing for a benign reason. */
export const SIM_OPTIONS: SchedulerOptions = {
  shard: 1, queueMax: 100_000, retainedMax: 1_000_000, retainedMs: 1e12, dlqMax: 100_000,
  leaseMs: 400, workerTimeoutMs: 1_000, defaultTimeoutMs: 5_000, defaultMaxAttempts: 200, agingMs: 1_000,
};

const TIMING: ShardTiming = {
  replicationDelayMsMax: 40, ackDelayMsMax: 20, backupTimeoutMs: 500, deadBackupNoticedMsMax: 1_200,
  failoverMsMin: 200, failoverMsMax: 800, resyncMsMax: 150,
};

/** Every bound of the run, named (TigerStyle: put a limit on everything); the actors' are in ACTOR_LIMITS. */
const LIMITS = {
  stepMsMin: 5, stepMsSpread: 20, tickMs: 50,
  crashPrimaryPerMille: 3, killBackupPerMille: 3, restartPerMille: 25, pauseBackupPerMille: 3, downMsMin: 300,
  pauseMsMin: 100, pauseMsSpread: 1_400,
  /** Compare a backup with the primary in full at least every this many comparisons. */
  fullCompareEvery: 8,
  /**
   * Run the core's full consistency check on every node every this many steps (and at the end).
   * Every step cost 60% more run time: every task is retained here, so the check grows with the run.
   */
  schedulerCheckEvery: 10,
};

export class SimFailure extends Error {}

export class ReplicationSim implements EffectSink, ActorContext {
  readonly prng: Prng;
  readonly shard: Shard;
  step = 0;
  now = 0;
  drain = false;
  readonly workers: Workers;
  readonly clients: Clients;
  private lastTickAt = -Infinity;
  /** Tasks whose completion was committed: completed on every later primary. */
  private readonly completedCommitted = new Set<number>();
  /** Completions on this primary not yet committed, in index order. */
  private pendingCompletions: Array<{ taskId: number; index: number }> = [];
  /** Completed under the current primary: stays completed while it reigns. */
  private completedInReign = new Set<number>();
  /** Per task id, the outputs of tasks a crashed primary created under that id and lost. */
  private readonly ghostOutputs = new Map<number, Set<string>>();
  /** Tasks completed with a lost task's result (the known bug of isTaskIdReuse). */
  private readonly completedWithGhostResult = new Set<number>();
  /** Per backup: connection and index last compared, and how many comparisons since a full one. */
  private readonly checked = new Map<SimNode, { at: string; sinceFull: number }>();
  private keysCheckedFor = "";
  private readonly epochSeen = new Map<SimNode, number>();
  readonly stats = {
    crashes: 0, backupKills: 0, restarts: 0, backupPauses: 0, resultsLost: 0, assignsLost: 0, workerPauses: 0, workerRestarts: 0,
    acked: 0, done: 0, taskIdReuse: 0,
  };

  constructor(readonly seed: number, nodeCount: number) {
    this.prng = new Prng(seed);
    const nodes = Array.from({ length: nodeCount }, (_, i) => new SimNode(`n${i}`, SIM_OPTIONS));
    this.shard = new Shard(nodes, this.prng, TIMING, this, (m) => this.fail(m));
    this.workers = new Workers(this);
    this.clients = new Clients(this);
    this.shard.promote(nodes[0]!);
  }

  fail(message: string): never {
    throw new SimFailure(`seed=${this.seed} step=${this.step} now=${this.now}: ${message}`);
  }

  check(condition: boolean, message: () => string): void {
    if (!condition) this.fail(message());
  }

  // ------------------------------------------------------------ the run

  runStep(): void {
    this.now += LIMITS.stepMsMin + this.prng.int(LIMITS.stepMsSpread);
    this.shard.now = this.now;
    if (!this.drain) {
      this.nodeChaos();
      this.workers.chaos();
    }
    this.shard.network();
    this.workers.step();
    this.clients.step();
    if (this.shard.primary !== undefined) {
      if (this.now - this.lastTickAt >= LIMITS.tickMs) {
        this.shard.tick();
        this.lastTickAt = this.now;
      }
      this.shard.pump();
      this.trackCommits();
    }
    this.checkInvariants();
    this.shard.prunePrimaryStates();
    this.step++;
  }

  /** Chaos, then a drain with reliable workers and no crashes until every submission is finished. */
  run(chaosSteps: number, drainStepsMax: number): void {
    while (this.step < chaosSteps) this.runStep();
    this.drain = true;
    this.workers.resume();
    const drainEnd = this.step + drainStepsMax;
    while (this.clients.unfinished().length > 0 || this.shard.primary === undefined) {
      if (this.step >= drainEnd) {
        const left = this.clients.unfinished();
        this.fail(`${left.length} submissions unfinished after ${drainStepsMax} drain steps, e.g. ${JSON.stringify(left.slice(0, 3).map((s) => ({ key: s.key, taskId: s.taskId, acked: s.acked, state: s.taskId === undefined ? undefined : this.shard.primary?.scheduler.task(s.taskId)?.state })))}`);
      }
      this.runStep();
    }
    this.checkEnd();
  }

  // ------------------------------------------------------------ faults

  private nodeChaos(): void {
    const s = this.shard;
    if (s.failover !== undefined || s.primary === undefined) return;
    const roll = this.prng.int(1000);
    const live = s.nodes.filter((n) => n.role === "backup");
    const dead = s.nodes.filter((n) => n.role === "down" && this.now - n.downSince >= LIMITS.downMsMin);
    if (roll < LIMITS.crashPrimaryPerMille) {
      // Only a single crash is covered by the guarantee: the primary dies only while a backup is in sync.
      if (s.inSyncBackups().length === 0) return;
      const { from, to, expected } = s.crashPrimary();
      this.stats.crashes++;
      // What takes over is exactly the old primary as it was at that index.
      this.check(expected !== undefined, () => `no state of ${from.name} kept at index ${to.appliedIndex} to compare ${to.name} with`);
      const diff = diffSchedulerStates(expected!, to.scheduler.exportState(), true);
      this.check(diff === undefined, () => `${to.name}, about to promote, differs from crashed primary ${from.name} at index ${to.appliedIndex}: state${diff}`);
      this.rememberGhosts(from, to);
    } else if (roll < LIMITS.crashPrimaryPerMille + LIMITS.killBackupPerMille) {
      if (live.length === 0) return;
      s.killBackup(live[this.prng.int(live.length)]!);
      this.stats.backupKills++;
    } else if (roll < LIMITS.crashPrimaryPerMille + LIMITS.killBackupPerMille + LIMITS.restartPerMille) {
      if (dead.length === 0) return;
      const node = dead[this.prng.int(dead.length)]!;
      s.restart(node);
      this.epochSeen.set(node, 0);
      this.stats.restarts++;
    } else if (roll < LIMITS.crashPrimaryPerMille + LIMITS.killBackupPerMille + LIMITS.restartPerMille + LIMITS.pauseBackupPerMille) {
      if (live.length === 0) return;
      // Sometimes longer than backupTimeoutMs: the primary drops it, and it syncs again when it runs.
      s.pause(live[this.prng.int(live.length)]!, this.now + LIMITS.pauseMsMin + this.prng.int(LIMITS.pauseMsSpread));
      this.stats.backupPauses++;
    }
  }

  /** Tasks the crashed primary created that its successor never heard of: their ids will be handed out again. */
  private rememberGhosts(from: SimNode, to: SimNode): void {
    for (const t of from.scheduler.exportState().tasks) {
      if (to.scheduler.task(t.id) !== undefined) continue;
      const outputs = this.ghostOutputs.get(t.id) ?? new Set<string>();
      outputs.add(text(outputFor(t.payload)));
      this.ghostOutputs.set(t.id, outputs);
    }
  }

  /** KNOWN_BUGS.tolerateTaskIdReuse: the output is that of a lost task that had the same id. */
  private isTaskIdReuse(taskId: number, output: string): boolean {
    return KNOWN_BUGS.tolerateTaskIdReuse && (this.ghostOutputs.get(taskId)?.has(output) ?? false);
  }

  // ------------------------------------------------------------ effects of the primary (EffectSink)

  assigned(workerId: number, task: Task): void {
    this.workers.assigned(workerId, task);
  }

  finished(task: Task, index: number): void {
    if (task.state !== "completed") return;
    // A result completes the task it was computed for: its output names that task's payload.
    const expected = text(outputFor(task.payload));
    if (text(task.output) !== expected && this.isTaskIdReuse(task.id, text(task.output))) {
      this.stats.taskIdReuse++;
      this.completedWithGhostResult.add(task.id);
    } else this.check(text(task.output) === expected, () => `task ${task.id} (key ${task.idempotencyKey}) completed at index ${index} with output "${text(task.output)}", expected "${expected}": a result of other work was taken for it`);
    this.pendingCompletions.push({ taskId: task.id, index });
    this.completedInReign.add(task.id);
  }

  workerLost(workerId: number): void {
    this.workers.lost(workerId);
  }

  released(reply: HeldReply): void {
    const { submission: s, epoch } = this.clients.replyTo(reply.requestId, reply.conn);
    if (s === undefined) this.fail(`reply to unknown request ${reply.requestId}`);
    this.check(epoch === this.shard.primary!.epoch, () => `primary of epoch ${this.shard.primary!.epoch} replies on a connection of epoch ${epoch}`);
    if (reply.kind === "submitted") {
      this.check(s.taskId === undefined || s.taskId === reply.taskId, () => `key ${s.key} was acknowledged as task ${s.taskId}, now as task ${reply.taskId}`);
      if (!s.acked) this.stats.acked++;
      s.taskId = reply.taskId;
      s.acked = true;
      return;
    }
    this.check(s.taskId === reply.taskId, () => `TASK_DONE for key ${s.key} names task ${reply.taskId}; its submission was acknowledged as ${s.taskId}`);
    this.check(reply.ok, () => `task ${reply.taskId} (key ${s.key}) failed: ${text(reply.output)}`);
    const expected = text(outputFor(s.payload));
    const known = this.completedWithGhostResult.has(reply.taskId) && this.isTaskIdReuse(reply.taskId, text(reply.output));
    this.check(known || text(reply.output) === expected, () => `TASK_DONE for key ${s.key} (task ${reply.taskId}) carries "${text(reply.output)}", expected "${expected}"`);
    if (!s.done) this.stats.done++;
    s.done = true;
  }

  promoted(node: SimNode): void {
    this.workers.promoted(node);
    this.pendingCompletions = [];
    this.completedInReign = new Set();
    this.lastTickAt = -Infinity;
  }

  private trackCommits(): void {
    const committed = this.shard.committed;
    let n = 0;
    while (n < this.pendingCompletions.length && this.pendingCompletions[n]!.index <= committed) {
      this.completedCommitted.add(this.pendingCompletions[n]!.taskId);
      n++;
    }
    if (n > 0) this.pendingCompletions.splice(0, n);
  }

  // ------------------------------------------------------------ invariants

  private checkInvariants(): void {
    const s = this.shard;
    let primaries = 0;
    for (const node of s.nodes) {
      if (node.role === "primary") primaries++;
      if (node.role === "down") continue;
      if (this.step % LIMITS.schedulerCheckEvery === 0) this.checkScheduler(node);
      const seen = this.epochSeen.get(node) ?? 0;
      this.check(node.epoch >= seen, () => `${node.name} went from epoch ${seen} back to ${node.epoch}`);
      this.check(node.epoch <= s.highestEpoch, () => `${node.name} is at epoch ${node.epoch}, above the highest ${s.highestEpoch}`);
      this.epochSeen.set(node, node.epoch);
    }
    this.check(primaries <= 1, () => `${primaries} primaries at once`);
    const p = s.primary;
    if (p === undefined) return;
    this.check(p.role === "primary" && p.epoch === s.highestEpoch && s.primaryOfEpoch.get(p.epoch) === p.name, () => `primary ${p.name} at epoch ${p.epoch}, highest epoch ${s.highestEpoch} belongs to ${s.primaryOfEpoch.get(s.highestEpoch)}`);
    this.checkAcknowledged(p);
    this.checkCompletions(p, s.primaryStates.get(p.appliedIndex) ?? p.scheduler.exportState());
    for (const node of s.nodes) this.checkBackup(node, p);
  }

  /** The core's full consistency check (Scheduler.checkInvariants) on a node's scheduler. */
  private checkScheduler(node: SimNode): void {
    try {
      node.scheduler.checkInvariants();
    } catch (err) {
      this.fail(`${node.name} (${node.role}, epoch ${node.epoch}, index ${node.appliedIndex}): ${(err as Error).message}`);
    }
  }

  /** No acknowledged task lost: it is on the primary, with its key and payload. */
  private checkAcknowledged(p: SimNode): void {
    for (const sub of this.clients.submissions) {
      if (!sub.acked) continue;
      const task = p.scheduler.task(sub.taskId!);
      this.check(task !== undefined, () => `acknowledged task ${sub.taskId} (key ${sub.key}) is missing on primary ${p.name} (epoch ${p.epoch}, index ${p.appliedIndex})`);
      this.check(task!.idempotencyKey === sub.key && equalBytes(task!.payload, sub.payload), () => `acknowledged task ${sub.taskId} (key ${sub.key}) is now key ${task!.idempotencyKey}, payload "${text(task!.payload)}"`);
    }
  }

  /** Completed once: the counter matches the distinct completed tasks; completed never goes back; one task per key. */
  private checkCompletions(p: SimNode, state: SchedulerState): void {
    let completed = 0;
    for (const t of state.tasks) if (t.state === "completed") completed++;
    // Only a new task can repeat a key: look again when the table grew or the primary changed.
    const keysFor = `${p.epoch}:${state.tasks.length}`;
    if (keysFor !== this.keysCheckedFor) {
      this.keysCheckedFor = keysFor;
      const keys = new Set<string>();
      for (const t of state.tasks) {
        this.check(t.idempotencyKey === "" || !keys.has(t.idempotencyKey), () => `key ${t.idempotencyKey} names two tasks on primary ${p.name}`);
        keys.add(t.idempotencyKey);
      }
    }
    this.check(state.counters.completed === completed, () => `primary ${p.name} counts ${state.counters.completed} completed, holds ${completed} completed tasks`);
    for (const id of this.completedCommitted) {
      this.check(p.scheduler.task(id)?.state === "completed", () => `task ${id} was committed as completed, but primary ${p.name} (epoch ${p.epoch}) has it ${p.scheduler.task(id)?.state ?? "missing"}`);
    }
    for (const id of this.completedInReign) {
      this.check(p.scheduler.task(id)?.state === "completed", () => `task ${id} completed on primary ${p.name}, now ${p.scheduler.task(id)?.state ?? "missing"}`);
    }
  }

  /** A backup of this epoch is the primary as it was at the backup's index. */
  private checkBackup(node: SimNode, p: SimNode): void {
    if (node.role !== "backup" || !node.synced || node.epoch !== p.epoch) return;
    this.check(node.appliedIndex <= p.appliedIndex, () => `backup ${node.name} at index ${node.appliedIndex}, ahead of primary ${p.name} at ${p.appliedIndex}`);
    const at = `${node.connection}:${node.appliedIndex}`;
    const last = this.checked.get(node);
    if (last?.at === at) return;
    const expected = this.shard.primaryStates.get(node.appliedIndex);
    if (expected === undefined) {
      this.check(!this.shard.isLinked(node), () => `no primary state kept for index ${node.appliedIndex} of backup ${node.name}`);
      return;
    }
    // In full after each snapshot and every few steps; in between, ended tasks by id and state only.
    const full = last === undefined || !last.at.startsWith(`${node.connection}:`) || last.sinceFull >= LIMITS.fullCompareEvery || this.drain;
    this.checked.set(node, { at, sinceFull: full ? 0 : last.sinceFull + 1 });
    const diff = diffSchedulerStates(expected, node.scheduler.exportState(), full);
    this.check(diff === undefined, () => `backup ${node.name} differs from primary ${p.name} at index ${node.appliedIndex} (epoch ${p.epoch}): state${diff}`);
  }

  /** After the drain: every submission acknowledged and completed, once, under its one key. */
  private checkEnd(): void {
    for (const node of this.shard.nodes) if (node.role !== "down") this.checkScheduler(node);
    const p = this.shard.primary!;
    const byKey = new Map<string, number[]>();
    for (const t of p.scheduler.exportState().tasks) byKey.set(t.idempotencyKey, [...(byKey.get(t.idempotencyKey) ?? []), t.id]);
    const submissions = this.clients.submissions;
    for (const s of submissions) {
      this.check(s.acked && s.done, () => `submission ${s.key} ended ${s.acked ? "acknowledged" : "unacknowledged"}, ${s.done ? "done" : "not done"}`);
      const ids = byKey.get(s.key) ?? [];
      this.check(ids.length === 1 && ids[0] === s.taskId, () => `key ${s.key} maps to tasks [${ids.join(", ")}], acknowledged as ${s.taskId}`);
      this.check(p.scheduler.task(s.taskId!)?.state === "completed", () => `task ${s.taskId} (key ${s.key}) ended ${p.scheduler.task(s.taskId!)?.state}`);
    }
    this.check(byKey.size === submissions.length, () => `${byKey.size} keys on the primary, ${submissions.length} submissions`);
  }
}
