// Tasks ready to run. Order: priority with aging, then earliest deadline, then
// arrival. A task's band is floor(readyAt / agingMs) + priority: each priority
// level counts as agingMs of waiting, so higher-priority work bypasses a task
// for at most (priority difference) x agingMs — nothing starves. Within a band,
// the earliest deadline goes first (tasks without one last), then the oldest.
// Tasks sit in one heap per (type, tag set), so a worker only looks at heaps it
// can serve (it handles the type and has every tag) and unmatched tasks wait
// without blocking others. A heap that runs empty is removed (task types and
// tag sets come and go: a table of empty heaps would grow and slow every scan).

import { assert } from "./assert.ts";
import { Heap } from "./heap.ts";
import type { Task } from "./task.ts";

export const PRIORITY_LEVELS = 256;

function before(a: Task, b: Task): boolean {
  if (a.band !== b.band) return a.band < b.band;
  const da = a.deadline === 0 ? Infinity : a.deadline;
  const db = b.deadline === 0 ? Infinity : b.deadline;
  if (da !== db) return da < db;
  return a.id < b.id;
}

interface TagHeap {
  type: string;
  /** Its key in heaps' inner map. */
  signature: string;
  tags: readonly string[];
  heap: Heap<Task>;
  /** Where it is in `entries` (removal swaps the last one into its place). */
  index: number;
}

/** What a worker can run: tasks whose tags it all has, of a type it handles (`types` undefined: any type). */
export interface Capabilities {
  readonly tagSet: ReadonlySet<string>;
  readonly typeSet: ReadonlySet<string> | undefined;
}

function serves(worker: Capabilities, entry: TagHeap): boolean {
  if (worker.typeSet !== undefined && !worker.typeSet.has(entry.type)) return false;
  for (let i = 0; i < entry.tags.length; i++) if (!worker.tagSet.has(entry.tags[i]!)) return false;
  return true;
}

export function tagSignature(tags: readonly string[]): string {
  if (tags.length === 0) return ""; // the common case, on the hot path
  return [...tags].sort().join(",");
}

export class ReadyQueue {
  /** By task type, then tag signature: two lookups, so placing a task builds no key string. */
  private readonly heaps = new Map<string, Map<string, TagHeap>>();
  /** The same heaps as a list, for the scans of popFor/hasFor (no iterator per call). */
  private readonly entries: TagHeap[] = [];
  private count = 0;
  /** Live queued tasks by their submitted priority (not the aged band): what operators set, and see piling up. */
  private readonly countByPriority = new Map<number, number>();

  constructor(private readonly agingMs: number) {}

  /** Live queued tasks per priority, highest priority (0) first; priorities with none left out. */
  byPriority(): Array<{ priority: number; queued: number }> {
    return [...this.countByPriority].map(([priority, queued]) => ({ priority, queued })).sort((a, b) => a.priority - b.priority);
  }

  private countPriority(priority: number, delta: 1 | -1): void {
    const n = (this.countByPriority.get(priority) ?? 0) + delta;
    assert(n >= 0, "a priority's queued count never goes below zero", "priority", priority);
    if (n === 0) this.countByPriority.delete(priority);
    else this.countByPriority.set(priority, n);
  }

  /** Live queued tasks (stale heap entries not counted). */
  get length(): number {
    return this.count;
  }

  /** Heaps held: one per (type, tag set) with queued or stale entries. */
  get heapCount(): number {
    return this.entries.length;
  }

  push(task: Task, now: number): void {
    // A second live entry would dispatch the task twice (stale entries are fine: they are not "queued").
    assert(task.state !== "queued", "a task is queued once", "task", task.id);
    task.band = Math.floor(now / this.agingMs) + task.priority;
    this.restore(task);
  }

  /** Puts a task back with the band it already has (snapshot restore). */
  restore(task: Task): void {
    task.state = "queued";
    const signature = tagSignature(task.tags);
    let byTags = this.heaps.get(task.type);
    if (byTags === undefined) this.heaps.set(task.type, (byTags = new Map()));
    let entry = byTags.get(signature);
    if (entry === undefined) {
      byTags.set(signature, (entry = { type: task.type, signature, tags: [...task.tags], heap: new Heap(before), index: this.entries.length }));
      this.entries.push(entry);
    }
    entry.heap.push(task);
    this.count++;
    this.countPriority(task.priority, 1);
  }

  /** A queued task left the queue some other way (cancelled): its heap entry goes stale. */
  forget(task: Task): void {
    assert(this.count > 0, "the queued count never goes below zero", "task", task.id);
    this.count--;
    this.countPriority(task.priority, -1);
  }

  /** The best queued task a worker with these capabilities may run, removed; undefined if none. */
  popFor(worker: Capabilities): Task | undefined {
    let best: TagHeap | undefined;
    // Backwards: liveTop may remove entry i, which moves an entry already seen into its place.
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i]!;
      if (!serves(worker, entry)) continue;
      const top = this.liveTop(entry);
      if (top === undefined) continue;
      if (best === undefined || before(top, best.heap.peek()!)) best = entry;
    }
    if (best === undefined) return undefined;
    assert(this.count > 0, "the queued count never goes below zero", "popping task", best.heap.peek()!.id);
    this.count--;
    const task = best.heap.pop()!;
    this.countPriority(task.priority, -1);
    if (best.heap.length === 0) this.remove(best);
    return task;
  }

  /** Whether popFor(worker) would return a task, without taking it. */
  hasFor(worker: Capabilities): boolean {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const entry = this.entries[i]!;
      if (serves(worker, entry) && this.liveTop(entry) !== undefined) return true;
    }
    return false;
  }

  /** Queued tasks no worker in `workers` can run: none has all their tags and handles their type. */
  unmatched(workers: Iterable<Capabilities>): number {
    const all = [...workers];
    let n = 0;
    for (const entry of this.entries) {
      if (all.some((w) => serves(w, entry))) continue;
      for (const t of entry.heap.values()) if (t.state === "queued") n++;
    }
    return n;
  }

  /** Every queued task in dispatch order for an all-capable worker (snapshots, tests). */
  ordered(): Task[] {
    const all: Task[] = [];
    for (const entry of this.entries) for (const t of entry.heap.values()) if (t.state === "queued") all.push(t);
    return all.sort((a, b) => (before(a, b) ? -1 : 1));
  }

  /** Calls `fn` with every heap entry, stale ones included, in no particular order (the full consistency check). */
  forEachEntry(fn: (task: Task) => void): void {
    for (const entry of this.entries) for (const task of entry.heap.values()) fn(task);
  }

  /** Drops stale entries off the top so peek() sees a live task; a heap left empty is removed. */
  private liveTop(entry: TagHeap): Task | undefined {
    const heap = entry.heap;
    while (heap.length > 0 && heap.peek()!.state !== "queued") heap.pop();
    if (heap.length === 0) this.remove(entry);
    return heap.peek();
  }

  /** O(1): out of both maps' view and swapped out of the list. */
  private remove(entry: TagHeap): void {
    const byTags = this.heaps.get(entry.type)!;
    byTags.delete(entry.signature);
    if (byTags.size === 0) this.heaps.delete(entry.type);
    const last = this.entries.pop()!;
    if (last !== entry) {
      this.entries[entry.index] = last;
      last.index = entry.index;
    }
  }
}
