// A snapshot in parts of bounded size (cut by snapshot-export.ts), and put back
// together part by part. A primary streams a big snapshot this way (no frame of
// hundreds of MB, no second of decoding in one go on the backup), and the backup
// restores each part as it arrives. Parts go in the order a restore needs: the head
// (scalars, and how many of each list follow), the tasks, then the lists that refer
// to tasks. The ready queue is not sent: it is every queued task (its order is a
// total order on the tasks' own fields, ready-queue.ts), rebuilt as they arrive.

import { SnapshotRefused, type SchedulerState } from "./scheduler-state.ts";
import { checkSchedulerTables } from "./scheduler-invariants.ts";
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

export type IdListName = "finished" | "dlq";

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

/** A task's encoded size, roughly: its fixed fields (a row of msgpack values) plus what varies. */
const TASK_FIXED_BYTES = 160;

export function taskBytesEstimate(t: Task): number {
  let n = TASK_FIXED_BYTES + t.payload.byteLength + t.type.length + t.idempotencyKey.length + (t.output?.byteLength ?? 0);
  n += 10 * (t.dependsOn.length + t.dependants.length + t.tags.length);
  for (const e of t.errors) n += 64 + e.message.length;
  for (const [, output] of t.foreignOutputs) n += 16 + output.byteLength;
  return n;
}

/**
 * Restores parts in the order SnapshotExport gives them; throws on a part out of
 * order, a list longer than the head said, or ids of tasks it does not hold.
 */
export class SnapshotAssembly {
  private head: SnapshotHead | undefined;
  private readonly seen: Record<"tasks" | "ready" | IdListName, number> = { tasks: 0, ready: 0, finished: 0, dlq: 0 };
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
      if (this.seen.finished + this.seen.dlq > 0) throw new Error("snapshot tasks after its id lists");
      this.count("tasks", part.tasks.length, head.taskCount);
      this.tables.restoreTasks(part.tasks);
      const queued = part.tasks.filter((t) => t.state === "queued").map((t) => t.id);
      this.count("ready", queued.length, head.readyCount);
      this.tables.restoreOrders(queued, [], []);
      return;
    }
    if (this.seen.tasks !== head.taskCount) throw new Error(`snapshot ${part.k} ids before all ${head.taskCount} tasks`);
    if (part.k === "finished" && this.seen.dlq > 0) throw new Error("snapshot finished ids after dlq ids");
    this.count(part.k, part.ids.length, head[`${part.k}Count`]);
    this.tables.restoreOrders([], part.k === "finished" ? part.ids : [], part.k === "dlq" ? part.ids : []);
  }

  /** After the last part: the tables, checked complete. */
  finish(): SchedulerTables {
    const head = this.head;
    if (head === undefined) throw new Error("snapshot ended before its head");
    const wanted = { tasks: head.taskCount, ready: head.readyCount, finished: head.finishedCount, dlq: head.dlqCount };
    for (const name of ["tasks", "ready", "finished", "dlq"] as const) {
      const want = wanted[name];
      if (this.seen[name] !== want) throw new Error(`snapshot ended with ${this.seen[name]} of ${want} ${name}`);
    }
    this.tables.restoreLinks(head.foreignParents, head.workers);
    // The same check a whole snapshot gets (SchedulerTables.fromState): a state no sequence of
    // moves can reach (a task both queued and leased) is refused, never loaded and led on.
    try {
      checkSchedulerTables(this.tables);
    } catch (err) {
      throw new SnapshotRefused(`snapshot refused, not loaded: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    return this.tables;
  }

  private count(name: "tasks" | "ready" | IdListName, n: number, max: number): void {
    if (this.seen[name] + n > max) throw new Error(`snapshot holds more ${name} than its head says (${max})`);
    this.seen[name] += n;
  }
}
