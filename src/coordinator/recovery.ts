// Start-up with --data-dir: the scheduler rebuilt from the write-ahead log's
// snapshot and the log batches after it, applied by the same function that
// applies replicated entries (one way to change state).

import { Scheduler, type SchedulerOptions } from "../core/scheduler.ts";
import { Reader } from "../protocol/codec.ts";
import { applyEntry } from "./event-log.ts";
import { readEntries } from "./replication-codec.ts";
import type { Recovered } from "./wal.ts";

/** `empty` when the log holds no snapshot. Throws, naming the data directory, when a checksummed record cannot be applied. */
export function replayRecovered(options: SchedulerOptions, recovered: Recovered, empty: Scheduler, dataDir: string): Scheduler {
  let scheduler = empty;
  const reader = new Reader();
  // Torn and corrupt records were cut by wal.recover(). What is left passed its checksum, so
  // failing to apply it means a bug or tampering: stop with the reason rather than drop acknowledged tasks.
  try {
    if (recovered.state !== undefined) scheduler = Scheduler.fromState(options, recovered.state);
    for (const batch of recovered.batches) {
      readEntries(recovered.epoch, batch.firstIndex, batch.count, batch.entries).readEachEntry(reader, (r) => applyEntry(scheduler, r));
    }
  } catch (err) {
    throw new Error(`--data-dir ${dataDir}: a checksummed snapshot or log record cannot be applied (${(err as Error).message}); not starting, so nothing acknowledged is dropped`);
  }
  scheduler.takeReady();
  return scheduler;
}
