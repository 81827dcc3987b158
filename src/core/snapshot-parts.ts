// A scheduler state cut into parts of bounded size, and put back together part by
// part. A primary streams a big snapshot this way (no frame of hundreds of MB, no
// second of decoding in one go on the backup), and the backup restores each part as
// it arrives. Parts go in the order a restore needs: the head (scalars and how many
// of each list follow), the tasks, then the lists that refer to tasks.

import type { SchedulerState } from "./scheduler-state.ts";
import { SchedulerTables } from "./scheduler-tables.ts";
import type { Task } from "./task.ts";

/** What comes first: everything small, and the length of each list that follows. */
export interface SnapshotHead {
  nextSeq: number;
  workerRotation: number;
  counters: SchedulerState["counters"];
  foreignParents: NonNullable<SchedulerState["foreignParents"]>;
  workers: SchedulerState["workers"];
  taskCount: number;
  readyCount: number;
  finishedCount: number;
  dlqCount: number;
}

export type IdListName = "ready" | "finished" | "dlq";

export type SnapshotPart =
  | { k: "head"; head: SnapshotHead }
  | { k: "tasks"; tasks: Task[] }
  | { k: IdListName; ids: number[] };

export interface PartLimits {
  /** A part holds tasks of about this many bytes at most (one bigger task goes alone). */
  bytesMax: number;
  /** A part of ids holds at most this many. */
  idsMax: number;
}

/** About 1 MiB a part: a frame small enough to interleave with the log, big enough that headers cost nothing. */
export const PART_LIMITS: PartLimits = { bytesMax: 1 << 20, idsMax: 65_536 };

/** A task's encoded size, roughly: its fixed fields (names included, msgpack) plus what varies. */
const TASK_FIXED_BYTES = 400;

export function taskBytesEstimate(t: Task): number {
  let n = TASK_FIXED_BYTES + t.payload.byteLength + t.type.length + t.idempotencyKey.length + (t.output?.byteLength ?? 0);
  n += 10 * (t.dependsOn.length + t.dependants.length + t.tags.length);
  for (const e of t.errors) n += 48 + e.error.length;
  for (const [, output] of t.foreignOutputs) n += 16 + output.byteLength;
  return n;
}

/** Cuts a state (taken at one point in time, and not changed while cut) into parts, one at a time. */
export class SnapshotCutter {
  private step = 0;
  private at = 0;

  constructor(
    private readonly state: SchedulerState,
    private readonly limits: PartLimits = PART_LIMITS,
  ) {}

  /** The next part, or undefined after the last. */
  next(): SnapshotPart | undefined {
    const s = this.state;
    if (this.step === 0) {
      this.step = 1;
      return { k: "head", head: headOf(s) };
    }
    if (this.step === 1) {
      if (this.at < s.tasks.length) return { k: "tasks", tasks: this.takeTasks() };
      this.nextStep();
    }
    for (const [step, name] of [[2, "ready"], [3, "finished"], [4, "dlq"]] as const) {
      if (this.step !== step) continue;
      const list = s[name];
      if (this.at < list.length) {
        const ids = list.slice(this.at, this.at + this.limits.idsMax);
        this.at += ids.length;
        return { k: name, ids };
      }
      this.nextStep();
    }
    return undefined;
  }

  private takeTasks(): Task[] {
    const tasks = this.state.tasks;
    const start = this.at;
    let bytes = 0;
    while (this.at < tasks.length && (this.at === start || bytes + taskBytesEstimate(tasks[this.at]!) <= this.limits.bytesMax)) {
      bytes += taskBytesEstimate(tasks[this.at]!);
      this.at++;
    }
    return tasks.slice(start, this.at);
  }

  private nextStep(): void {
    this.step++;
    this.at = 0;
  }
}

export function headOf(s: SchedulerState): SnapshotHead {
  return {
    nextSeq: s.nextSeq, workerRotation: s.workerRotation, counters: s.counters, foreignParents: s.foreignParents ?? [], workers: s.workers,
    taskCount: s.tasks.length, readyCount: s.ready.length, finishedCount: s.finished.length, dlqCount: s.dlq.length,
  };
}

/**
 * Restores parts in the order SnapshotCutter gives them; throws on a part out of
 * order, a list longer than the head said, or ids of tasks it does not hold.
 */
export class SnapshotAssembly {
  private head: SnapshotHead | undefined;
  private readonly seen: Record<"tasks" | IdListName, number> = { tasks: 0, ready: 0, finished: 0, dlq: 0 };
  private readonly tables: SchedulerTables;

  constructor(agingMs: number) {
    this.tables = new SchedulerTables(agingMs);
  }

  get taskCount(): number {
    return this.seen.tasks;
  }

  add(part: SnapshotPart): void {
    if (part.k === "head") {
      if (this.head !== undefined) throw new Error("snapshot has a second head");
      this.head = part.head;
      this.tables.restoreScalars(part.head);
      return;
    }
    const head = this.head;
    if (head === undefined) throw new Error("snapshot part before its head");
    if (part.k === "tasks") {
      if (this.seen.ready + this.seen.finished + this.seen.dlq > 0) throw new Error("snapshot tasks after its id lists");
      this.count("tasks", part.tasks.length, head.taskCount);
      this.tables.restoreTasks(part.tasks);
      return;
    }
    if (this.seen.tasks !== head.taskCount) throw new Error(`snapshot ${part.k} ids before all ${head.taskCount} tasks`);
    const order: IdListName[] = ["ready", "finished", "dlq"];
    for (const later of order.slice(order.indexOf(part.k) + 1)) if (this.seen[later] > 0) throw new Error(`snapshot ${part.k} ids after ${later} ids`);
    this.count(part.k, part.ids.length, head[`${part.k}Count`]);
    this.tables.restoreOrders(part.k === "ready" ? part.ids : [], part.k === "finished" ? part.ids : [], part.k === "dlq" ? part.ids : []);
  }

  /** After the last part: the tables, checked complete. */
  finish(): SchedulerTables {
    const head = this.head;
    if (head === undefined) throw new Error("snapshot ended before its head");
    for (const name of ["tasks", "ready", "finished", "dlq"] as const) {
      const want = name === "tasks" ? head.taskCount : head[`${name}Count`];
      if (this.seen[name] !== want) throw new Error(`snapshot ended with ${this.seen[name]} of ${want} ${name}`);
    }
    this.tables.restoreLinks(head.foreignParents, head.workers);
    return this.tables;
  }

  private count(name: "tasks" | IdListName, n: number, max: number): void {
    if (this.seen[name] + n > max) throw new Error(`snapshot holds more ${name} than its head says (${max})`);
    this.seen[name] += n;
  }
}
