// Writes to the data directory (--data-dir), and what a failed one means. One
// that fails leaves what the disk holds unknown (a failed fsync may have dropped
// the dirty pages, PostgreSQL's "fsyncgate"), and the entries are already out of
// the in-memory log: carrying on could acknowledge what no disk holds. So, as
// etcd and PostgreSQL do, the process stops; a restart recovers from what the
// disk really holds, and a replica takes over. `onFailure` exits the process at
// once; `failed` also stops the coordinator's pump, ticks, snapshots and the
// backup's acknowledgements, for a caller whose onFailure does not exit (tests).

import type { Logger } from "../cli/log.ts";
import type { WriteAheadLog } from "./wal.ts";

export class DataDir {
  /** A write failed: nothing more may be acknowledged (the process is stopping). */
  failed = false;

  /** `wal`: undefined without --data-dir (then every write succeeds at once). */
  constructor(
    readonly wal: WriteAheadLog | undefined,
    private readonly dir: string,
    private readonly log: Logger,
    private readonly onFailure: () => void,
  ) {}

  /** Runs `write` against the log; false when it failed (or one did before). */
  write(write: (wal: WriteAheadLog) => void): boolean {
    if (this.failed) return false;
    if (this.wal === undefined) return true;
    try {
      write(this.wal);
      return true;
    } catch (err) {
      this.failed = true;
      this.log.error("data directory write failed; stopping: what is on disk is unknown", { dataDir: this.dir, error: (err as Error).message });
      this.onFailure();
      return false;
    }
  }

  close(): void {
    this.wal?.close();
  }
}
