// Start-up with --data-dir: the scheduler rebuilt from the write-ahead log's
// snapshot and the log batches after it, applied by the same function that
// applies replicated entries (one way to change state). With --recover-from-peer
// the directory's log and snapshot are set aside instead, and the node starts
// empty, to be rebuilt from the primary's snapshot.

import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../cli/log.ts";
import { Scheduler, type SchedulerOptions } from "../core/scheduler.ts";
import { Reader } from "../protocol/codec.ts";
import type { CoordinatorConfig } from "./config.ts";
import { applyEntry } from "./event-log.ts";
import { REPLICA_ID_FILE, replicaIdFor } from "./replica-id.ts";
import { readEntries } from "./replication-codec.ts";
import { StorageError } from "./storage-error.ts";
import { SYNCED_MARK_FILE } from "./wal-synced-mark.ts";
import { fsyncDirectory } from "./fsync-directory.ts";
import { COMPACTION_TEMP_FILE, SNAPSHOT_FILE, SNAPSHOT_OLD_FILE, SNAPSHOT_TEMP_FILE, WAL_FILE, WAL_TEMP_FILE, WriteAheadLog, type Recovered } from "./wal.ts";

/**
 * What a set-aside moves, in this order, so a crash part-way leaves nothing a node could lead
 * from by mistake: the replica id first (etcd mode: the node comes back a stranger, outside the
 * ISR), then the snapshot (a log without it no longer follows one, and is refused), the log last.
 */
const SET_ASIDE_FILES = [REPLICA_ID_FILE, SNAPSHOT_FILE, SNAPSHOT_TEMP_FILE, COMPACTION_TEMP_FILE, SNAPSHOT_OLD_FILE, WAL_FILE, WAL_TEMP_FILE, SYNCED_MARK_FILE] as const;

export interface OpenedDataDir {
  wal: WriteAheadLog;
  recovered: Recovered;
  scheduler: Scheduler;
  /** --recover-from-peer: where the old files went ("" when there were none). The node holds nothing now. */
  setAsideTo?: string;
}

/** Opens --data-dir and rebuilds the state it holds. Throws a StorageError when it cannot be trusted. */
export function openDataDir(config: CoordinatorConfig, log: Logger, empty: Scheduler): OpenedDataDir {
  if (!config.recoverFromPeer) return replayDataDir(config, log, empty);
  const setAsideTo = setAsideDataDir(config.dataDir, new Date());
  // etcd mode: a new incarnation. The old id may be in the ISR, which would let this empty node
  // campaign; a new one is outside it until the primary has seen it catch up.
  if (config.etcd !== undefined) config.etcd.replicaId = replicaIdFor(config.nodeId, config.dataDir);
  log.warn("data directory set aside; rejoining from a peer (--recover-from-peer): this node leads only once it holds a primary's snapshot", {
    dataDir: config.dataDir, setAsideTo: setAsideTo || "(nothing to set aside)", ...(config.etcd !== undefined && { replicaId: config.etcd.replicaId }),
  });
  return { ...replayDataDir(config, log, empty), setAsideTo };
}

/**
 * Moves the log, snapshot and replica id into DIR/set-aside-<time>/ (never deletes them: they
 * may be all that is left of some tasks) and returns that directory, or "" when there was nothing.
 */
export function setAsideDataDir(dir: string, now: Date): string {
  const present = SET_ASIDE_FILES.filter((name) => existsSync(join(dir, name)));
  if (present.length === 0) return "";
  let to = join(dir, `set-aside-${now.toISOString().replace(/[:.]/g, "-")}`);
  for (let n = 2; existsSync(to); n++) to = join(dir, `set-aside-${now.toISOString().replace(/[:.]/g, "-")}-${n}`);
  mkdirSync(to);
  fsyncDirectory(dir);
  for (const name of present) {
    renameSync(join(dir, name), join(to, name));
    // Each move durable before the next, so a crash leaves them in the order above.
    fsyncDirectory(to);
    fsyncDirectory(dir);
  }
  return to;
}

function replayDataDir(config: CoordinatorConfig, log: Logger, empty: Scheduler): Omit<OpenedDataDir, "setAsideTo"> {
  const wal = new WriteAheadLog(config.dataDir, config.walBytesMax, log, config.fsyncIntervalMs);
  try {
    const recovered = wal.recover();
    return { wal, recovered, scheduler: replayRecovered(config.scheduler, recovered, empty, wal) };
  } catch (err) {
    wal.close();
    throw err;
  }
}

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

