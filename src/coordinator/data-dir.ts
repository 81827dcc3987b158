// Writes to the data directory (--data-dir), and what a failed one means. One
// that fails leaves what the disk holds unknown (a failed fsync may have dropped
// the dirty pages, PostgreSQL's "fsyncgate"), and the entries are already out of
// the in-memory log: carrying on could acknowledge what no disk holds. So, as
// etcd and PostgreSQL do, the process stops; a restart recovers from what the
// disk really holds, and a replica takes over. `onFailure` exits the process at
// once; `failed` also stops the coordinator's pump, ticks, snapshots and the
// backup's acknowledgements, for a caller whose onFailure does not exit (tests).
// The log's own compaction runs here too, one part per event-loop turn (wal-compaction.ts),
// and with --fsync-interval-ms the timer that syncs the log.

import type { Logger } from "../cli/log.ts";
import type { Scheduler } from "../core/scheduler.ts";
import { WalCompaction } from "./wal-compaction.ts";
import type { WriteAheadLog } from "./wal.ts";

export class DataDir {
  /** A write failed: nothing more may be acknowledged (the process is stopping). */
  failed = false;
  /** The log's snapshot being written, one part per turn; at most one at a time. */
  private compaction: WalCompaction | undefined;
  /** With --fsync-interval-ms: syncs what was appended since the last sync. */
  private readonly syncTimer: ReturnType<typeof setInterval> | undefined;

  /** `wal`: undefined without --data-dir (then every write succeeds at once). */
  constructor(
    readonly wal: WriteAheadLog | undefined,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly onFailure: () => void,
  ) {
    if (wal !== undefined && wal.syncIntervalMs > 0) {
      this.syncTimer = setInterval(() => this.write((w) => w.syncInBackground((err) => this.fail(err))), wal.syncIntervalMs);
      this.syncTimer.unref();
    }
  }

  /** Runs `write` against the log; false when it failed (or one did before). */
  write(write: (wal: WriteAheadLog) => void): boolean {
    if (this.failed) return false;
    if (this.wal === undefined) return true;
    try {
      write(this.wal);
      return true;
    } catch (err) {
      this.fail(err as Error);
      return false;
    }
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.log.error("data directory write failed; stopping: what is on disk is unknown", { dataDir: this.dir, error: err.message });
    this.onFailure();
  }

  /**
   * After an append: when the log has grown past --wal-bytes-max, starts writing the
   * scheduler's state at `index` (the last entry appended) in the background.
   */
  compactIfDue(epoch: number, index: number, scheduler: Scheduler): void {
    const wal = this.wal;
    if (wal === undefined || this.failed || this.compaction !== undefined || !wal.wantsSnapshot) return;
    const compaction = new WalCompaction(wal, epoch, index, scheduler);
    this.compaction = compaction;
    this.log.info("log compaction started", { index, epoch, logBytes: wal.logBytes });
    const step = () => {
      if (this.compaction !== compaction) return;
      if (!this.write(() => compaction.step())) compaction.abandon();
      if (compaction.done) this.compaction = undefined;
      else setImmediate(step);
    };
    setImmediate(step);
  }

  close(): void {
    clearInterval(this.syncTimer);
    this.write((w) => w.syncIfDirty()); // a clean stop leaves nothing only written
    this.compaction?.abandon();
    this.compaction = undefined;
    this.wal?.close();
  }
}
