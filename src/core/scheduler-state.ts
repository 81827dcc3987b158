// The plain-data form of a scheduler's replicated state: what a snapshot
// holds, what a backup restores from, and what goes to disk.

import type { SchedulerCounters } from "./scheduler.ts";
import type { ForeignParent, Task } from "./task.ts";

export interface SchedulerState {
  nextSeq: number;
  workerRotation: number;
  counters: SchedulerCounters;
  /** Every known task, in table order. */
  tasks: Task[];
  /** Queued task ids in dispatch order. */
  ready: number[];
  /** Completed and cancelled task ids, oldest first (the retention order). */
  finished: number[];
  /** Failed task ids in the dead-letter queue, oldest first. */
  dlq: number[];
  /** Parents on other shards that tasks here wait on (absent in snapshots from before they existed). */
  foreignParents?: ForeignParent[];
  workers: Array<{
    id: number;
    slots: number;
    tags: string[];
    /** Task types it handles; absent: any (snapshots from before workers announced types, and such workers). */
    types?: string[];
    free: number;
    lastSeenAt: number;
    done: number;
    failed: number;
    /** Leased task ids in lease order. */
    leased: number[];
    draining: boolean;
  }>;
}

/**
 * A snapshot that cannot be restored: it names a task it does not hold, or
 * breaks an invariant of the scheduler (scheduler-invariants.ts). The message
 * says which; nothing of it is loaded.
 */
export class SnapshotRefused extends Error {
  override readonly name = "SnapshotRefused";
}
