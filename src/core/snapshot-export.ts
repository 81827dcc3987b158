// A snapshot of a live scheduler at one point in time, cut into parts across many
// turns of the event loop while the scheduler goes on changing. Copying a million
// tasks at once stood the primary still for ~0.6 s (and encoding them for seconds);
// here a part costs a few ms and nothing is copied up front but what is small or
// bounded (counters, workers, foreign parents, the retained and dead-letter id lists).
//
// Why the parts add up to the state at the start (T0), copy-on-write:
// - The tasks held at T0 are exactly those held with an id below idEnd: ids only
//   grow (a new task's is past every held one) and a removed id never comes back.
// - Parts scan the live table in id order; `cursor` is the last id cut. Every change
//   to a task, and its removal, calls SchedulerTables.touch() first (lifecycle.ts,
//   scheduler.ts), and touch() keeps a copy of the task (its "preimage") if its id is
//   past the cursor and below idEnd and none is kept yet. So for every T0 task past
//   the cursor, either it is unchanged since T0 or its preimage holds its T0 state:
//   the scan cuts preimage ?? live copy, which is the T0 state either way. Changes
//   after the cursor passed a task do not matter.
// - A T0 task removed before the scan reached it is not in the table any more, but
//   its preimage is: those are cut after the scan. Every T0 task is cut once: by the
//   scan (its preimage, if any, is dropped then) or from the preimages left over.
// - The ready queue is rebuilt from the queued tasks (snapshot-parts.ts), so it
//   needs no copy; finished and dead-letter ids are copied at T0 (bounded by
//   --retained-max and --dlq-max).
// Memory: preimages of tasks touched ahead of the cursor, at most the T0 table.
// A test (test/unit/snapshot-export.test.ts) changes the state between parts from a
// seed and checks the parts restore to exportState() as it was at T0.

import { taskCopy, type SchedulerTables } from "./scheduler-tables.ts";
import { PART_LIMITS, taskBytesEstimate, type PartLimits, type SnapshotHead, type SnapshotPart } from "./snapshot-parts.ts";
import type { Task } from "./task.ts";

/** Tasks fetched from the table per look: the byte limit cuts the part, this just batches the scan. */
const SCAN_BATCH = 256;

const enum Stage { Head, Scan, Removed, Finished, Dlq, Done }

export class SnapshotExport {
  private readonly head: SnapshotHead;
  private readonly finished: number[];
  private readonly dlq: number[];
  private readonly idEnd: number;
  /** Every T0 task with an id up to this one has been cut. */
  private cursor = -1;
  /** T0 states of tasks changed (or removed) before the scan reached them. */
  private readonly preimages = new Map<number, Task>();
  private removed: Task[] = [];
  private stage = Stage.Head;
  private at = 0;
  private readonly scanned: Task[] = [];

  constructor(
    private readonly tables: SchedulerTables,
    private readonly limits: PartLimits = PART_LIMITS,
  ) {
    const t = tables;
    this.finished = [];
    for (const task of t.finishedOrder) this.finished.push(task.id);
    this.dlq = [...t.dlq.keys()];
    this.head = {
      nextSeq: t.nextSeq, workerRotation: t.workerRotation, counters: { ...t.counters }, foreignParents: t.foreignParentsCopy(), workers: t.workersCopy(),
      taskCount: t.tasks.size, readyCount: t.ready.length, finishedCount: this.finished.length, dlqCount: this.dlq.length,
    };
    this.idEnd = t.tasks.idEnd();
    t.exports.add(this);
  }

  /** A task is about to change or leave the table: keep its T0 state if the scan has yet to cut it. */
  touch(task: Task): void {
    if (task.id > this.cursor && task.id < this.idEnd && !this.preimages.has(task.id)) this.preimages.set(task.id, taskCopy(task));
  }

  /**
   * The next part, or undefined after the last (the export is then detached from the
   * tables). A part may hold the scheduler's own task objects (not copied, to spare
   * the garbage): encode it before the scheduler changes again.
   */
  next(): SnapshotPart | undefined {
    switch (this.stage) {
      case Stage.Head:
        this.stage = Stage.Scan;
        return { k: "head", head: this.head };
      case Stage.Scan: {
        const tasks = this.scan();
        if (tasks.length > 0) return { k: "tasks", tasks };
        // Past every T0 id: touch() keeps nothing more; what it kept is of tasks removed since.
        this.cursor = this.idEnd;
        this.removed = [...this.preimages.values()].sort((a, b) => a.id - b.id);
        this.preimages.clear();
        this.stage = Stage.Removed;
        return this.next();
      }
      case Stage.Removed: {
        const tasks = this.cutRemoved();
        if (tasks.length > 0) return { k: "tasks", tasks };
        this.stage = Stage.Finished;
        return this.next();
      }
      case Stage.Finished:
      case Stage.Dlq: {
        const name = this.stage === Stage.Finished ? "finished" : "dlq";
        const list = this[name];
        if (this.at < list.length) {
          const ids = list.slice(this.at, this.at + this.limits.idsMax);
          this.at += ids.length;
          return { k: name, ids };
        }
        this.at = 0;
        this.stage++;
        return this.next();
      }
      default:
        this.close();
        return undefined;
    }
  }

  /** Stops keeping preimages (a stream given up, or done). */
  close(): void {
    this.stage = Stage.Done;
    this.preimages.clear();
    this.tables.exports.delete(this);
  }

  /** The next tasks past the cursor in id order, about limits.bytesMax of them, each as it was at T0. */
  private scan(): Task[] {
    const out: Task[] = [];
    let bytes = 0;
    while (bytes < this.limits.bytesMax) {
      const batch = this.scanned;
      batch.length = 0;
      this.tables.tasks.range(this.cursor, this.idEnd, SCAN_BATCH, batch);
      if (batch.length === 0) break;
      for (const live of batch) {
        const pre = this.preimages.get(live.id);
        const size = taskBytesEstimate(pre ?? live);
        if (out.length > 0 && bytes + size > this.limits.bytesMax) return out; // its turn comes in the next part
        out.push(pre ?? live);
        if (pre !== undefined) this.preimages.delete(live.id);
        bytes += size;
        this.cursor = live.id;
      }
    }
    return out;
  }

  private cutRemoved(): Task[] {
    const out: Task[] = [];
    let bytes = 0;
    while (this.at < this.removed.length) {
      const task = this.removed[this.at]!;
      const size = taskBytesEstimate(task);
      if (out.length > 0 && bytes + size > this.limits.bytesMax) break;
      out.push(task);
      bytes += size;
      this.at++;
    }
    if (this.at >= this.removed.length) {
      this.at = 0;
      this.removed = [];
    }
    return out;
  }
}
