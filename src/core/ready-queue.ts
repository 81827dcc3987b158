// Tasks ready to run, by priority (0 = highest), FIFO within a priority.
// Priorities are a u8, so a bucket per level and a hint of the lowest
// non-empty level keep push and pop O(1) in practice.

import { Deque } from "./deque.ts";
import type { Task } from "./task.ts";

export const PRIORITY_LEVELS = 256;

export class ReadyQueue {
  private readonly buckets: (Deque<Task> | undefined)[] = new Array(PRIORITY_LEVELS);
  private lowestLevel = PRIORITY_LEVELS;
  private count = 0;

  get length(): number {
    return this.count;
  }

  push(task: Task): void {
    const level = task.priority;
    let bucket = this.buckets[level];
    if (bucket === undefined) bucket = this.buckets[level] = new Deque<Task>(64);
    bucket.push(task);
    this.count++;
    if (level < this.lowestLevel) this.lowestLevel = level;
  }

  /** Every queued task in the order pop() would return them (for snapshots). */
  *[Symbol.iterator](): IterableIterator<Task> {
    for (let level = this.lowestLevel; level < PRIORITY_LEVELS; level++) {
      const bucket = this.buckets[level];
      if (bucket !== undefined) yield* bucket;
    }
  }

  pop(): Task | undefined {
    while (this.lowestLevel < PRIORITY_LEVELS) {
      const task = this.buckets[this.lowestLevel]?.shift();
      if (task !== undefined) {
        this.count--;
        return task;
      }
      this.lowestLevel++;
    }
    return undefined;
  }
}
