// The primary's rules for what it may tell anyone, after its state changed: the
// one order of effects that coordinator.pump() runs and the replica group
// simulation's nodes run too.
//   1. write before send: new log entries are in this node's log (written, not yet
//      synced) before any backup hears of them, so no crash of this process leaves
//      a backup holding what this node lost; a failed write stops everything;
//   2. send them to every backup, at once;
//   3. sync: make them durable here (fsync), while the backups receive and sync
//      the same entries: the two fsyncs overlap instead of adding up. Only a power
//      loss can take from this node what a backup holds, and entries are committed
//      only once synced here too, so such entries were never acknowledged (and any
//      node that leads afterwards does so in a new epoch: backups then take its state).
//      A failed sync stops the step before anything commits;
//   4. commit: the commit point is what this node and every in-sync replica hold,
//      judged at the instant the step began (the one its caller checked for a stall
//      of its own): a clock read here would count a pause that fell inside the step
//      as the backups' lag;
//   5. release the replies the commit point covers, in log order, and none other.
// A reply waits in a HeldQueue under the index of the entry it reports on; a
// primary that steps down refuses what is still held (its entries may be lost).

import { assert } from "./assert.ts";
import { Deque } from "./deque.ts";

export interface ReplicationStep<Batch> {
  /** The entries appended since the last step, or undefined when there are none. */
  take(): Batch | undefined;
  /** Writes them to this node's log; false when that failed (the process is stopping). */
  write(batch: Batch): boolean;
  /** Hands them to every backup now (not at the end of the turn: this node may block in sync next). */
  send(batch: Batch): void;
  /** Makes what write() wrote durable here; false when that failed (the process is stopping). */
  sync(): boolean;
  /** The committed index, with replicas' lag judged at `now` (monotonic ms, when the step began). */
  commit(now: number): number;
  /** Releases the replies covered by `committed`. */
  release(committed: number): void;
}

/** Runs one step begun at `now`; false when a write (then nothing was sent) or a sync failed (then nothing was committed or released). */
export function replicate<Batch>(step: ReplicationStep<Batch>, now: number): boolean {
  const batch = step.take();
  if (batch !== undefined) {
    if (!step.write(batch)) return false;
    step.send(batch);
    if (!step.sync()) return false;
  }
  step.release(step.commit(now));
  return true;
}

/** Replies waiting for their entry to commit, in log order. */
export class HeldQueue<T extends { index: number }> {
  private readonly held = new Deque<T>();
  private lastIndex = 0;

  get length(): number {
    return this.held.length;
  }

  hold(item: T): void {
    // Released by index order: a reply held under an older index than one before it would wait behind it.
    assert(item.index >= this.lastIndex, "held replies are in log order", "index", item.index, "last held", this.lastIndex);
    this.lastIndex = item.index;
    this.held.push(item);
  }

  /** Hands every item whose entry is committed (index <= committed) to `send`, oldest first. */
  release(committed: number, send: (item: T) => void): void {
    while (this.held.length > 0 && this.held.peek()!.index <= committed) send(this.held.shift()!);
  }

  /** Stepping down: every item still held goes to `refuse` instead (its entry may be lost). */
  refuseAll(refuse: (item: T) => void): void {
    while (this.held.length > 0) refuse(this.held.shift()!);
    this.lastIndex = 0;
  }
}
