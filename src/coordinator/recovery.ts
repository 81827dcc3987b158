// Start-up with --data-dir: the scheduler rebuilt from the write-ahead log's
// snapshot and the log batches after it, applied by the same function that
// applies replicated entries (one way to change state).

import { Scheduler, type SchedulerOptions } from "../core/scheduler.ts";
import { Reader } from "../protocol/codec.ts";
import { applyEntry } from "./event-log.ts";
import { readEntries } from "./replication-codec.ts";
import { StorageError } from "./storage-error.ts";
import type { Recovered } from "./wal.ts";

/** `empty` when the log holds no snapshot. Throws a StorageError, naming the file and record, when a checksummed one cannot be applied. */
export function replayRecovered(options: SchedulerOptions, recovered: Recovered, empty: Scheduler, files: { snapshotFile: string; logFile: string }): Scheduler {
  // What is left passed its checksum, so failing to apply it means a bug or tampering: stop
  // with the reason rather than drop acknowledged tasks.
  let scheduler = empty;
  if (recovered.state !== undefined) {
    try {
      scheduler = Scheduler.fromState(options, recovered.state);
    } catch (err) {
      throw new StorageError(files.snapshotFile, 0, `its checksummed state cannot be restored (${(err as Error).message})`);
    }
  }
  const reader = new Reader();
  for (const batch of recovered.batches) {
    try {
      readEntries(recovered.epoch, batch.firstIndex, batch.count, batch.entries).readEachEntry(reader, (r) => applyEntry(scheduler, r));
    } catch (err) {
      throw new StorageError(files.logFile, batch.offset, `the checksummed record of entries ${batch.firstIndex}-${batch.firstIndex + batch.count - 1} cannot be applied (${(err as Error).message})`);
    }
  }
  scheduler.takeReady();
  return scheduler;
}
