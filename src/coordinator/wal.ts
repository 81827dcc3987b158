// Durability with --data-dir: the replication log, on disk. Every batch of
// log entries the primary ships (and every batch a backup applies) is appended
// to DIR/wal.log and fsynced before it is acknowledged (group commit: one
// fsync per batch; the primary sends a batch to its backups before its own fsync,
// see core/replication-step.ts). With --fsync-interval-ms N the append is only written
// (the page cache holds it, so the crash of this process loses nothing) and the
// log is synced every N ms instead (syncInBackground(), from data-dir.ts): then
// what makes an acknowledged entry safe is that every in-sync replica wrote it,
// and a power loss of every replica's host at once can lose the last N ms.
// When the log passes walBytesMax, a snapshot of the whole state is written
// (temp file, fsync, rename) and replaces the log's records up to its index, so
// the disk holds one snapshot plus about walBytesMax of log.
// A running coordinator writes that snapshot in parts between other work
// (wal-compaction.ts) and keeps the records appended meanwhile.
//
// wal.log:         records (format, and what counts as a torn tail: wal-records.ts)
// snapshot.bin:    "TSSNAP01" | u32 bodyBytes | u32 crc32(body) | body
//   body = u32 epoch | f64 index | msgpack SchedulerState
// Recovery reads the snapshot, then replays the records that follow it in order.
// It repairs only what a crash leaves: a torn last record (cut off), and records
// a newer epoch's snapshot replaced before the log was emptied (dropped). Any
// other damage or gap stops start-up with a StorageError: never serve from a log
// that silently lost acknowledged records.

import { closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, ftruncateSync, unlink, writeSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Logger } from "../cli/log.ts";
import type { SchedulerState } from "../core/scheduler-state.ts";
import { LatencyBuckets } from "../metrics/latency-buckets.ts";
import type { WalStats } from "../protocol/messages.ts";
import { decodeSnapshot, encodeSnapshot } from "./replication-codec.ts";
import { Reader } from "../protocol/codec.ts";
import { StorageError } from "./storage-error.ts";
import { BATCH_HEADER_BYTES, crc32, readRecord, RECORD_HEADER_BYTES } from "./wal-records.ts";
import { readSyncedMark, SyncedMark, SYNCED_MARK_FILE } from "./wal-synced-mark.ts";
import { fsyncDirectory } from "./fsync-directory.ts";

export { crc32 } from "./wal-records.ts";

export const WAL_FILE = "wal.log";
export const SNAPSHOT_FILE = "snapshot.bin";
/** A snapshot being written; renamed to SNAPSHOT_FILE once whole and synced. */
export const SNAPSHOT_TEMP_FILE = `${SNAPSHOT_FILE}.tmp`;
/** The log's own snapshot being written in parts (wal-compaction.ts): a file of its own, so a snapshot from a primary never clashes with it. */
export const COMPACTION_TEMP_FILE = `${SNAPSHOT_FILE}.compacting`;
/**
 * The snapshot just replaced, by a second name: renaming over its only name would free its
 * blocks at once (~25 ms for 100 MB on the test machine, the event loop standing still); it is
 * removed off the event loop instead. A crash may leave it; nothing reads it.
 */
export const SNAPSHOT_OLD_FILE = `${SNAPSHOT_FILE}.old`;
/** The records a compaction keeps, copied here and renamed over WAL_FILE. */
export const WAL_TEMP_FILE = `${WAL_FILE}.tmp`;
/** A snapshot file: this magic, u32 body bytes, u32 CRC-32 of the body; body `u32 epoch | f64 index | msgpack state`. */
export const SNAPSHOT_MAGIC = new TextEncoder().encode("TSSNAP01");
export const SNAPSHOT_HEADER_BYTES = SNAPSHOT_MAGIC.length + 8;
/** What one cutLogStep() copies: ~1 ms of reading and writing. */
const LOG_CUT_SLICE_BYTES = 1024 * 1024;
/** The copy is synced as it grows, so its last sync has little to flush. */
const LOG_CUT_SYNC_EVERY_BYTES = 2 * 1024 * 1024;
/** fdatasync bounds in ms: an SSD syncs in well under 1 ms, a busy or networked disk in tens. */
const FSYNC_BUCKETS_MS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] as const;

export interface Recovered {
  epoch: number;
  /** Index of the last entry recovered (snapshot plus replayed log). */
  index: number;
  state: SchedulerState | undefined;
  /** Batches after the snapshot, in order: replay each with the same apply as replication. `offset`: where its record starts in wal.log. */
  batches: Array<{ offset: number; firstIndex: number; count: number; entries: Uint8Array }>;
  /** The torn last record that was cut off, if there was one: never acknowledged when each append is synced (its fsync never returned). */
  tornTail?: { offset: number; bytes: number; problem: string };
  /** Records a newer epoch's snapshot replaced, dropped (a crash came before the log was emptied). */
  superseded?: { offset: number; bytes: number };
}

export class WriteAheadLog {
  private fd: number;
  private bytes = 0;
  private readonly walPath: string;
  private readonly snapshotPath: string;
  private readonly fsyncMs = new LatencyBuckets(FSYNC_BUCKETS_MS);
  private readonly counters = { commits: 0, entries: 0, bytes: 0, snapshots: 0, syncs: 0, fsyncMsMax: 0 };
  /** Appended since the last fdatasync of the log (only ever true with a sync interval). */
  private dirty = false;
  /** A syncInBackground() is running. */
  private syncing = false;
  /** Which log file `fd` is: a background sync begun on an earlier one is moot (the cut synced its copy). */
  private fdGeneration = 0;
  /** With a sync interval: how far the log is on disk, for recovery after a power loss (wal-synced-mark.ts). */
  private readonly mark: SyncedMark;
  /** The log being cut to the records after a snapshot (cutLogStep()): a copy in WAL_TEMP_FILE, synced as it grows. */
  private logCut: { fd: number; from: number; copied: number; unsynced: number } | undefined;
  /** Counts snapshots installed: a compaction begun before the latest one is out of date. */
  private installed = 0;

  constructor(
    private readonly dir: string,
    private readonly walBytesMax: number,
    private readonly log: Logger,
    /** 0: every append is synced before it returns; N: appends are only written, and syncInBackground() is called every N ms. */
    readonly syncIntervalMs = 0,
  ) {
    const created = missingDirectories(dir);
    mkdirSync(dir, { recursive: true });
    this.walPath = join(dir, WAL_FILE);
    this.snapshotPath = join(dir, SNAPSHOT_FILE);
    this.mark = new SyncedMark(dir);
    const logIsNew = !existsSync(this.walPath);
    this.fd = openSync(this.walPath, "a+");
    // A new file's (and a new directory's) name is only durable once the directory holding it is
    // synced: without this, a crash soon after the first start could lose wal.log with the
    // acknowledged entries in it. The data directory must sync; the levels above it, which we
    // may not be allowed to open, are synced where we can.
    if (logIsNew) fsyncDirectory(dir);
    for (const level of created) {
      try {
        fsyncDirectory(dirname(level));
      } catch (err) {
        log.warn("could not sync a new directory's parent; its name may not survive a crash", { directory: level, error: (err as Error).message });
      }
    }
  }

  get logFile(): string {
    return this.walPath;
  }

  get snapshotFile(): string {
    return this.snapshotPath;
  }

  /**
   * Reads what a previous run left: the snapshot, then the records that follow it. Cuts a torn
   * tail and records the snapshot superseded; throws a StorageError, changing nothing, on any
   * other damage.
   */
  recover(): Recovered {
    const snapshot = this.readSnapshot();
    const result: Recovered = { epoch: snapshot?.epoch ?? 0, index: snapshot?.index ?? 0, state: snapshot?.state, batches: [] };
    const data = existsSync(this.walPath) ? new Uint8Array(readFileSync(this.walPath)) : new Uint8Array(0);
    let at = 0;
    /** Where records start that a newer epoch's snapshot replaced; they and everything after them go. */
    let supersededAt: number | undefined;
    /** Written with --fsync-interval-ms: the log is on disk up to here, and what is past it was only written. */
    const synced = readSyncedMark(this.dir, this.fd);
    while (at < data.length) {
      const read = readRecord(data, at);
      if (read.kind === "corrupt") {
        if (synced === undefined || at < synced) throw new StorageError(this.walPath, at, read.problem);
        // A power loss between syncs: the records from here on were never synced, and may have reached the disk in any order.
        result.tornTail = { offset: at, bytes: data.length - at, problem: `past the last sync (byte ${synced}): ${read.problem}` };
        break;
      }
      if (read.kind === "torn") {
        result.tornTail = { offset: at, bytes: data.length - at, problem: read.problem };
        break;
      }
      const { epoch, firstIndex, count, entries, end } = read.record;
      const last = firstIndex + count - 1;
      if (last <= result.index && supersededAt === undefined) {
        at = end; // already in the snapshot
        continue;
      }
      if (snapshot !== undefined && epoch < snapshot.epoch) {
        // A backup wrote a new primary's snapshot, which shares only a prefix of our history,
        // and crashed before emptying the log: these records are the rest of our old history,
        // which that snapshot replaced (they were never part of the new primary's log).
        supersededAt ??= at;
      } else if (supersededAt !== undefined || firstIndex !== result.index + 1) {
        throw new StorageError(this.walPath, at, this.notFollowing(snapshot, result.index, epoch, firstIndex, last, supersededAt));
      } else {
        result.batches.push({ offset: at, firstIndex, count, entries });
        result.index = last;
        result.epoch = Math.max(result.epoch, epoch);
      }
      at = end;
    }
    const keep = supersededAt ?? at;
    if (supersededAt !== undefined) {
      result.superseded = { offset: supersededAt, bytes: at - supersededAt };
      this.log.warn("write-ahead log: dropped records a newer epoch's snapshot replaced", { file: this.walPath, offset: supersededAt, bytes: at - supersededAt, snapshotEpoch: snapshot?.epoch, snapshotIndex: snapshot?.index });
    }
    if (result.tornTail !== undefined) {
      this.log.warn("write-ahead log: torn tail repaired", { file: this.walPath, ...result.tornTail, note: synced === undefined
        ? "a crash interrupted this append before its fsync returned, so it was never acknowledged"
        : "written after the last sync (--fsync-interval-ms) and lost to a power loss: it may have been acknowledged, and a replica that stayed up holds it" });
    }
    if (keep < data.length) this.truncate(keep);
    this.bytes = keep;
    if (this.syncIntervalMs > 0) {
      // What a crashed run left only written is in the page cache, not yet on disk: sync it now, then mark it.
      fdatasyncSync(this.fd);
      this.mark.writeNow(this.fd, this.bytes);
    } else if (existsSync(join(this.dir, SYNCED_MARK_FILE))) {
      // Every append is synced from now on: a mark left here could only ever be stale.
      this.mark.remove();
      fsyncDirectory(this.dir);
    }
    return result;
  }

  /** Why a record cannot be replayed after what precedes it: a gap, an overlap, or history after superseded records. */
  private notFollowing(snapshot: { epoch: number; index: number } | undefined, index: number, epoch: number, firstIndex: number, last: number, supersededAt: number | undefined): string {
    const record = `the record of entries ${firstIndex}-${last} (epoch ${epoch})`;
    if (supersededAt !== undefined) return `${record} comes after records the snapshot replaced (from offset ${supersededAt}); nothing is appended there before the log is emptied`;
    if (snapshot === undefined && index === 0) return `${record} is the first one, but there is no ${SNAPSHOT_FILE} holding entries 1-${firstIndex - 1}: the log does not follow its snapshot`;
    return `${record} does not follow entry ${index}, where the ${index === snapshot?.index ? `snapshot (epoch ${snapshot.epoch})` : "previous record"} ends`;
  }

  /** Appends one batch and, without a sync interval, makes it durable before returning. */
  append(epoch: number, firstIndex: number, count: number, entries: Uint8Array): void {
    this.writeRecord(epoch, firstIndex, count, entries);
    this.syncCommit();
  }

  /** Appends one batch's record to the log file (the page cache): durable only after a sync. */
  writeRecord(epoch: number, firstIndex: number, count: number, entries: Uint8Array): void {
    const body = new Uint8Array(BATCH_HEADER_BYTES + entries.length);
    const v = new DataView(body.buffer);
    v.setUint32(0, epoch, true);
    v.setFloat64(4, firstIndex, true);
    v.setUint32(12, count, true);
    body.set(entries, BATCH_HEADER_BYTES);
    const header = new Uint8Array(RECORD_HEADER_BYTES);
    const h = new DataView(header.buffer);
    h.setUint32(0, body.length, true);
    h.setUint32(4, crc32(body), true);
    writeAll(this.fd, header);
    writeAll(this.fd, body);
    this.bytes += header.length + body.length;
    const c = this.counters;
    c.commits++;
    c.entries += count;
    c.bytes += header.length + body.length;
    this.dirty = true;
  }

  /** A group commit's sync: fdatasync now, unless a sync interval is set (then the timer syncs). */
  syncCommit(): void {
    if (this.syncIntervalMs === 0) this.syncIfDirty();
  }

  /** Makes every append so far durable (one fdatasync), unless nothing was appended since the last sync and none is running. */
  syncIfDirty(): void {
    if (!this.dirty && !this.syncing) return;
    const syncStarted = performance.now();
    fdatasyncSync(this.fd);
    if (this.syncIntervalMs > 0) this.mark.writeNow(this.fd, this.bytes);
    this.dirty = false;
    this.countSync(performance.now() - syncStarted);
  }

  /**
   * The interval's sync: fdatasync on the thread pool, so the event loop does not stand still for
   * as long as the disk takes (tens of ms on a busy disk). One at a time; what is appended meanwhile
   * waits for the next. `failed` is called if it fails (the caller stops the process).
   */
  syncInBackground(failed: (err: Error) => void): void {
    if (!this.dirty || this.syncing) return;
    this.dirty = false;
    this.syncing = true;
    const generation = this.fdGeneration;
    const syncStarted = performance.now();
    const bytes = this.bytes;
    // Closed, or replaced by a synced copy, meanwhile: moot (its errors too).
    const moot = () => generation !== this.fdGeneration;
    fdatasync(this.fd, (err) => {
      if (moot() || err !== null) {
        this.syncing = false;
        if (!moot()) failed(err!);
        return;
      }
      this.mark.writeInBackground(this.fd, bytes, (markErr) => {
        this.syncing = false; // only now: two marks in flight could land out of order
        if (moot()) return;
        if (markErr !== null) return failed(markErr);
        this.countSync(performance.now() - syncStarted);
      });
    });
  }

  private countSync(syncMs: number): void {
    this.fsyncMs.record(syncMs);
    const c = this.counters;
    c.syncs++;
    if (syncMs > c.fsyncMsMax) c.fsyncMsMax = syncMs;
  }

  /** What the log has done since it was opened: how many entries each fsync carried, and how long fsyncs took. */
  stats(): WalStats {
    return { ...this.counters, fsyncHistogram: this.fsyncMs.snapshot() };
  }

  /** The log's length: where the next record will start. */
  get logBytes(): number {
    return this.bytes;
  }

  /** How many snapshots were installed since the log was opened. */
  get snapshotsInstalled(): number {
    return this.installed;
  }

  /** True when the log is large enough that the next snapshot should replace it. */
  get wantsSnapshot(): boolean {
    return this.bytes >= this.walBytesMax;
  }

  /** Writes the whole state durably, then empties the log (everything in it is in the snapshot). */
  snapshot(epoch: number, index: number, state: SchedulerState): void {
    const packed = encodeSnapshot(state);
    const body = new Uint8Array(12 + packed.length);
    const v = new DataView(body.buffer);
    v.setUint32(0, epoch, true);
    v.setFloat64(4, index, true);
    body.set(packed, 12);
    const header = new Uint8Array(SNAPSHOT_HEADER_BYTES);
    header.set(SNAPSHOT_MAGIC);
    const h = new DataView(header.buffer);
    h.setUint32(SNAPSHOT_MAGIC.length, body.length, true);
    h.setUint32(SNAPSHOT_MAGIC.length + 4, crc32(body), true);
    const temp = this.snapshotTempFile;
    const fd = openSync(temp, "w");
    writeAll(fd, header);
    writeAll(fd, body);
    fsyncSync(fd);
    closeSync(fd);
    this.installSnapshot(epoch, index, body.length);
  }

  /** Where a snapshot is written before it replaces the last one (also wal-snapshot-stream.ts). */
  get snapshotTempFile(): string {
    return join(this.dir, SNAPSHOT_TEMP_FILE);
  }

  /**
   * A snapshot temp file (`from`) is whole and synced: it replaces the last snapshot. Then the
   * log keeps only its records from byte `keepLogFrom` on (those past the snapshot's index).
   * By default that is none, and the log is emptied now; otherwise a copy of those records is
   * made by cutLogStep() calls, a slice each, while appends go on. Until the cut is done,
   * recovery skips the records the new snapshot holds.
   */
  installSnapshot(epoch: number, index: number, bodyBytes: number, from = this.snapshotTempFile, keepLogFrom = this.bytes, detail: Record<string, unknown> = {}): void {
    this.abandonLogCut(); // cutting for an older snapshot: this one replaces the log it was copying
    const old = join(this.dir, SNAPSHOT_OLD_FILE);
    const hadOld = existsSync(this.snapshotPath);
    if (hadOld) {
      rmSync(old, { force: true }); // one a crash left, or one still being removed
      linkSync(this.snapshotPath, old);
    }
    renameSync(from, this.snapshotPath);
    fsyncDirectory(this.dir);
    if (keepLogFrom >= this.bytes) {
      ftruncateSync(this.fd, 0);
      fsyncSync(this.fd);
      this.bytes = 0;
      this.dirty = false;
      if (this.syncIntervalMs > 0) this.mark.writeNow(this.fd, 0);
    } else {
      this.logCut = { fd: openSync(join(this.dir, WAL_TEMP_FILE), "w"), from: keepLogFrom, copied: keepLogFrom, unsynced: 0 };
    }
    this.installed++;
    this.counters.snapshots++;
    this.log.info("snapshot written", { index, epoch, bytes: bodyBytes, ...detail });
    if (hadOld) {
      unlink(old, (err) => {
        if (err !== null && err.code !== "ENOENT") this.log.warn("could not remove the replaced snapshot", { file: old, error: err.message });
      });
    }
  }

  /** Where a compaction writes its snapshot (see COMPACTION_TEMP_FILE). */
  get compactionTempFile(): string {
    return join(this.dir, COMPACTION_TEMP_FILE);
  }

  /**
   * Copies the next slice of the records installSnapshot() keeps into WAL_TEMP_FILE; once at
   * most two slices are left, copies them, syncs, and renames the copy over the log, so a crash
   * leaves either the whole old log or the records kept. True when no cut is left to do.
   * The kept records are those appended while a compaction ran, but that can be tens of MB:
   * copied in one go they stood the event loop still.
   */
  cutLogStep(): boolean {
    const cut = this.logCut;
    if (cut === undefined) return true;
    const done = this.bytes - cut.copied <= 2 * LOG_CUT_SLICE_BYTES;
    const n = done ? this.bytes - cut.copied : LOG_CUT_SLICE_BYTES;
    const slice = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const read = readSync(this.fd, slice, at, n - at, cut.copied + at);
      if (read === 0) throw new Error(`${this.walPath} ended at ${cut.copied + at} bytes, ${this.bytes} expected`);
      at += read;
    }
    writeAll(cut.fd, slice);
    cut.copied += n;
    cut.unsynced += n;
    if (!done) {
      if (cut.unsynced >= LOG_CUT_SYNC_EVERY_BYTES) {
        fdatasyncSync(cut.fd);
        cut.unsynced = 0;
      }
      return false;
    }
    fsyncSync(cut.fd);
    closeSync(cut.fd);
    this.logCut = undefined;
    renameSync(join(this.dir, WAL_TEMP_FILE), this.walPath);
    fsyncDirectory(this.dir);
    closeSync(this.fd);
    this.fd = openSync(this.walPath, "a+");
    this.fdGeneration++;
    this.bytes -= cut.from;
    this.dirty = false; // the copy, synced above, holds every record appended so far
    if (this.syncIntervalMs > 0) this.mark.writeNow(this.fd, this.bytes);
    return true;
  }

  /** A cut given up (a newer snapshot, or closing): the partial copy goes; the log stays whole. */
  private abandonLogCut(): void {
    const cut = this.logCut;
    if (cut === undefined) return;
    this.logCut = undefined;
    closeSync(cut.fd);
    rmSync(join(this.dir, WAL_TEMP_FILE), { force: true });
  }

  /** Closes the files; what was appended since the last syncIfDirty() stays in the page cache. */
  close(): void {
    this.abandonLogCut();
    this.fdGeneration++;
    this.mark.close();
    closeSync(this.fd);
  }

  /** Cuts the log back to its first `bytes` (what recovery kept), durably. */
  private truncate(bytes: number): void {
    ftruncateSync(this.fd, bytes);
    fsyncSync(this.fd);
  }

  /**
   * The snapshot, or undefined when there is none. It is written to a temp file, synced and then
   * renamed, so a crash never leaves a partial snapshot.bin: any flaw in it is damage.
   */
  private readSnapshot(): { epoch: number; index: number; state: SchedulerState } | undefined {
    if (!existsSync(this.snapshotPath)) return undefined;
    const data = new Uint8Array(readFileSync(this.snapshotPath));
    const bad = (offset: number, problem: string) => new StorageError(this.snapshotPath, offset, problem);
    if (data.length < SNAPSHOT_HEADER_BYTES) throw bad(0, `${data.length} bytes, shorter than a snapshot header`);
    if (!SNAPSHOT_MAGIC.every((b, i) => data[i] === b)) throw bad(0, "not a snapshot file (no TSSNAP01 at its start)");
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const bodyBytes = view.getUint32(SNAPSHOT_MAGIC.length, true);
    if (SNAPSHOT_HEADER_BYTES + bodyBytes !== data.length) throw bad(SNAPSHOT_MAGIC.length, `its header says ${bodyBytes} bytes of state, the file holds ${data.length - SNAPSHOT_HEADER_BYTES}`);
    const body = data.subarray(SNAPSHOT_HEADER_BYTES);
    if (crc32(body) !== view.getUint32(SNAPSHOT_MAGIC.length + 4, true)) throw bad(SNAPSHOT_HEADER_BYTES, "checksum mismatch");
    try {
      return decodeSnapshot(new Reader().reset(body));
    } catch (err) {
      throw bad(SNAPSHOT_HEADER_BYTES, `its state cannot be decoded (${(err as Error).message})`);
    }
  }
}

export function writeAll(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}

/** The directories mkdir -p would create for `dir`, deepest last. */
function missingDirectories(dir: string): string[] {
  const missing: string[] = [];
  for (let at = resolve(dir); !existsSync(at); at = dirname(at)) {
    missing.unshift(at);
    if (dirname(at) === at) break;
  }
  return missing;
}

/** Makes the directory's entries (a created or renamed file's name) durable. */
