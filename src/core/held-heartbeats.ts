// Worker heartbeats a primary has taken but not logged yet. A heartbeat only
// moves its worker's last-seen time and the leases it names forward, and only a
// tick reads those (to drop a silent worker or end a lease); logging each one
// would write, replicate and fsync every worker's heartbeat every heartbeat-ms
// on a shard with nothing else to do.
//
// So the primary holds the latest heartbeat of each worker and logs it, stamped
// with the time it arrived, just before its next entry of any other kind, and
// before a tick that would otherwise drop a worker or end a lease. The log says
// what it said when every heartbeat was logged on arrival, in the same order,
// less the heartbeats a later one of the same worker makes redundant; a quiet
// shard logs one about once per min(leaseMs, workerTimeoutMs) per busy worker.
// Heartbeats of different workers touch different state, so their order
// between themselves does not matter. Held heartbeats are runtime state: a new
// primary gives every worker and lease a fresh grace period anyway.

export interface HeldHeartbeat {
  workerId: number;
  /** When it arrived: the time its log entry carries. */
  at: number;
  /** The task ids it names as running: their leases are extended. */
  running: readonly number[];
}

const NONE: readonly HeldHeartbeat[] = Object.freeze([]);

export class HeldHeartbeats {
  /** One per worker, in arrival order; bounded by the workers connected. */
  private readonly byWorker = new Map<number, HeldHeartbeat>();

  get size(): number {
    return this.byWorker.size;
  }

  /**
   * Holds `beat` in place of its worker's earlier one. Returns what must be
   * logged now (before `beat`, which stays held): usually nothing, but the
   * earlier heartbeat when it names a task `beat` does not, whose lease
   * extension would otherwise be lost.
   */
  hold(beat: HeldHeartbeat): readonly HeldHeartbeat[] {
    const earlier = this.byWorker.get(beat.workerId);
    this.byWorker.delete(beat.workerId); // re-inserted last: take() stays in arrival order
    this.byWorker.set(beat.workerId, beat);
    return earlier === undefined || namesAll(beat.running, earlier.running) ? NONE : [earlier];
  }

  /** When the worker's held heartbeat arrived, if one is held: stats say how long ago a worker was heard. */
  heardAt(workerId: number): number | undefined {
    return this.byWorker.get(workerId)?.at;
  }

  /** Every held heartbeat, oldest first; none is held after. */
  take(): HeldHeartbeat[] {
    const beats = [...this.byWorker.values()];
    this.byWorker.clear();
    return beats;
  }
}

/** Whether `later` names every task `earlier` does (then applying `later` alone does what both would). */
function namesAll(later: readonly number[], earlier: readonly number[]): boolean {
  if (earlier.length === 0) return true;
  const named = new Set(later);
  return earlier.every((id) => named.has(id));
}
