// The primary's rules for what it may tell anyone, after its state changed: the
// one order of effects that coordinator.pump() runs and the replica group
// simulation's nodes run too.
//   1. persist before send: new log entries are durable here before any backup
//      hears of them, and a failed write stops everything (nothing below runs);
//   2. send them to every backup;
//   3. commit: the commit point is what this node and every in-sync replica hold,
//      judged at the instant the step began (the one its caller checked for a stall
//      of its own): a clock read here would count a pause that fell inside the step
//      as the backups' lag;
//   4. release the replies the commit point covers, in log order, and none other.
// A reply waits in a HeldQueue under the index of the entry it reports on; a
// primary that steps down refuses what is still held (its entries may be lost).

import { assert } from "./assert.ts";
import { Deque } from "./deque.ts";

export interface ReplicationStep<Batch> {
  /** The entries appended since the last step, or undefined when there are none. */
  take(): Batch | undefined;
  /** Makes them durable; false when that failed (the process is stopping). */
  persist(batch: Batch): boolean;
  send(batch: Batch): void;
  /** The committed index, with replicas' lag judged at `now` (monotonic ms, when the step began). */
  commit(now: number): number;
  /** Releases the replies covered by `committed`. */
  release(committed: number): void;
}

/** Runs one step begun at `now`; false when persisting failed (then nothing was sent, committed or released). */
export function replicate<Batch>(step: ReplicationStep<Batch>, now: number): boolean {
  const batch = step.take();
  if (batch !== undefined) {
    if (!step.persist(batch)) return false;
    step.send(batch);
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
