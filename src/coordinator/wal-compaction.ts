// The log's own snapshot with --data-dir, written in parts between other work. When
// the log passes --wal-bytes-max, the whole state replaces it; encoding and writing
// that in one go stood a primary with 300,000 queued tasks still for ~2 s (clients
// timed out, backups were dropped). Here the state is cut copy-on-write at one log
// index (core/snapshot-export.ts, as for a backup's streamed snapshot), one part per
// event-loop turn, into a file written as a backup writes a streamed one
// (wal-snapshot-stream.ts). Records appended meanwhile stay in the log.
//
// Crash safety: the parts go to their own temp file (synced as it grows); only
// once it is whole and synced is it renamed over the last snapshot (the directory
// synced), so a crash before leaves the old snapshot and the whole log. The log then
// keeps the records past the snapshot's index (copied a slice a step, synced, renamed:
// wal.ts cutLogStep()); a crash before that leaves the new snapshot and the whole log,
// whose records up to the index recovery skips. test/unit/wal-compaction.test.ts
// recovers a copy of the files at every step.

import type { Scheduler } from "../core/scheduler.ts";
import type { SnapshotExport } from "../core/snapshot-export.ts";
import type { PartLimits } from "../core/snapshot-parts.ts";
import { SNAPSHOT_PART_LIMITS } from "./snapshot-stream.ts";
import type { WriteAheadLog } from "./wal.ts";
import { SnapshotFileStream } from "./wal-snapshot-stream.ts";

export class WalCompaction {
  private readonly cutter: SnapshotExport;
  private file: SnapshotFileStream | undefined;
  /** Where the records past `index` start in the log. */
  private readonly keepLogFrom: number;
  /** A snapshot installed since (one from a primary) makes this one out of date. */
  private readonly installedAtStart: number;
  private parts = 0;
  private readonly startedAt = performance.now();
  private over = false;
  /** Installed: what is left is cutting the log, a slice a step. */
  private installed = false;
  /** After the last part: the rest of the file and its install, a step at a time. */
  private finishing: Generator<void, void> | undefined;

  /** The scheduler's state as it is now, at log index `index`: the log must hold every record up to it. */
  constructor(
    private readonly wal: WriteAheadLog,
    private readonly epoch: number,
    private readonly index: number,
    scheduler: Scheduler,
    limits: PartLimits = SNAPSHOT_PART_LIMITS,
  ) {
    this.keepLogFrom = wal.logBytes;
    this.installedAtStart = wal.snapshotsInstalled;
    this.cutter = scheduler.startExport(limits);
  }

  get done(): boolean {
    return this.over;
  }

  /**
   * Cuts and writes the next part; after the last, installs the snapshot. Throws what the
   * disk threw (the caller stops the process: data-dir.ts). Does nothing once done.
   */
  step(): void {
    if (this.over) return;
    if (this.installed) {
      this.over = this.wal.cutLogStep(); // also true when a newer snapshot took over the log
      return;
    }
    if (this.wal.snapshotsInstalled !== this.installedAtStart) return this.abandon(); // the log it would cut is gone
    if (this.finishing !== undefined) {
      this.installed = this.finishing.next().done === true;
      return;
    }
    // A part may hold the scheduler's own task objects: written now, before they change.
    const part = this.cutter.next();
    if (part === undefined) {
      const detail = () => ({ parts: this.parts, keptLogBytes: this.wal.logBytes - this.keepLogFrom, ms: Math.round(performance.now() - this.startedAt) });
      this.finishing = this.file!.rest(this.keepLogFrom, detail);
      return this.step();
    }
    this.parts++;
    if (part.k === "head") this.file = new SnapshotFileStream(this.wal, this.epoch, this.index, part.head, this.wal.compactionTempFile);
    else this.file!.add(part);
  }

  /** Given up (a snapshot from a primary replaced the log, or the process stops): the temp file goes. */
  abandon(): void {
    this.over = true;
    this.cutter.close();
    this.file?.abandon();
  }
}
