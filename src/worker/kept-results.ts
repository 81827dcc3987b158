// The results a worker keeps per shard so that a failover loses none:
//   - the last ones sent to each shard's primary (a ring of copies), since a
//     primary that dies may not have replicated them yet;
//   - the ones produced while the shard has no primary (bounded, oldest dropped).
// When a new primary is chosen, both go to it; it drops those it already has
// by lease attempt. Kept apart from WorkerNode because it is the worker's only
// state that outlives a coordinator.

import { Deque } from "../core/deque.ts";
import { copyRange } from "../protocol/copy-range.ts";

export class KeptResults {
  private readonly waiting = new Map<number, Uint8Array[]>();
  private readonly recent = new Map<number, Deque<Uint8Array>>();

  /**
   * `recentMax()`: how many sent results to keep per shard, enough to cover what
   * a primary can lose in flight; `waitingMax`: how many to hold per shard while
   * it has no primary; `dropped()` counts each one let go.
   */
  constructor(
    private readonly recentMax: () => number,
    private readonly waitingMax: number,
    private readonly dropped: () => void,
  ) {}

  /** Results waiting for their shard's next primary. */
  get waitingCount(): number {
    let n = 0;
    for (const waiting of this.waiting.values()) n += waiting.length;
    return n;
  }

  /** A result just sent to `shard`'s primary: kept (as a copy) to resend after a failover. */
  sent(shard: number, bytes: Uint8Array, start: number, end: number): void {
    let recent = this.recent.get(shard);
    if (recent === undefined) this.recent.set(shard, (recent = new Deque()));
    // The oldest copy's buffer is reused when it has the right size (results of one workload mostly do): no garbage per task.
    const oldest = recent.length >= this.recentMax() ? recent.shift() : undefined;
    const copy = oldest !== undefined && oldest.length === end - start ? oldest : new Uint8Array(end - start);
    copyRange(copy, 0, bytes, start, end);
    recent.push(copy);
  }

  /** A result whose shard has no primary right now (failover under way): held, bounded, for the next one. */
  hold(shard: number, body: Uint8Array): void {
    let waiting = this.waiting.get(shard);
    if (waiting === undefined) this.waiting.set(shard, (waiting = []));
    if (waiting.length >= this.waitingMax) {
      waiting.shift();
      this.dropped();
    }
    waiting.push(body.slice());
  }

  /** Everything a new primary of `shard` must hear: the recent results, then those held; the held ones are handed over. */
  takeForNewPrimary(shard: number): Uint8Array[] {
    const resend = [...(this.recent.get(shard) ?? []), ...(this.waiting.get(shard) ?? [])];
    this.waiting.delete(shard);
    return resend;
  }
}
