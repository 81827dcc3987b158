// With --fsync-interval-ms, how far the write-ahead log is known to be on disk.
// The kernel writes a file's dirty pages back in any order, so a power loss
// between two syncs can leave a hole (zeros, or old bytes) before a record
// that did reach the disk: not the torn last record recovery otherwise expects
// (wal-records.ts), but damage it would refuse. This mark, written after each
// sync, names the byte up to which the log was synced: damage past it is what a
// power loss leaves of records only written (cut, like a torn tail), and damage
// before it is corruption (refused, as always).
//
// wal.synced = "TSSYNC01" | f64 inode of wal.log | f64 synced bytes | u32 crc32 of the two
//
// The inode ties the mark to one log file: the log's cut replaces wal.log by a
// copy (a new inode), and a mark for the old file must not apply to the new one.
// Without --fsync-interval-ms every append is synced and there is no mark: a
// mark left from an interval run is used for that run's log, then removed, so a
// stale one can never make recovery cut records that were synced.

import { closeSync, existsSync, fdatasync, fdatasyncSync, fstatSync, openSync, readFileSync, rmSync, write, writeSync } from "node:fs";
import { join } from "node:path";
import { fsyncDirectory } from "./fsync-directory.ts";
import { crc32 } from "./wal-records.ts";

export const SYNCED_MARK_FILE = "wal.synced";
const MAGIC = new TextEncoder().encode("TSSYNC01");
const MARK_BYTES = MAGIC.length + 8 + 8 + 4;

function encode(inode: number, bytes: number): Uint8Array {
  const mark = new Uint8Array(MARK_BYTES);
  mark.set(MAGIC);
  const v = new DataView(mark.buffer);
  v.setFloat64(MAGIC.length, inode, true);
  v.setFloat64(MAGIC.length + 8, bytes, true);
  v.setUint32(MAGIC.length + 16, crc32(mark.subarray(MAGIC.length, MAGIC.length + 16)), true);
  return mark;
}

/** The synced length the mark in `dir` gives for the log file open at `logFd`, or undefined when there is none that applies. */
export function readSyncedMark(dir: string, logFd: number): number | undefined {
  const path = join(dir, SYNCED_MARK_FILE);
  if (!existsSync(path)) return undefined;
  const mark = new Uint8Array(readFileSync(path));
  if (mark.length !== MARK_BYTES || !MAGIC.every((b, i) => mark[i] === b)) return undefined;
  const v = new DataView(mark.buffer, mark.byteOffset);
  if (v.getUint32(MAGIC.length + 16, true) !== crc32(mark.subarray(MAGIC.length, MAGIC.length + 16))) return undefined;
  if (v.getFloat64(MAGIC.length, true) !== fstatSync(logFd).ino) return undefined;
  return v.getFloat64(MAGIC.length + 8, true);
}

/** Writes the mark; one write at offset 0 of a small file, then its own sync. */
export class SyncedMark {
  private fd: number | undefined;

  constructor(private readonly dir: string) {}

  /** The log open at `logFd` is on disk up to `bytes`: said durably before returning. */
  writeNow(logFd: number, bytes: number): void {
    const fd = this.open();
    writeSync(fd, encode(fstatSync(logFd).ino, bytes), 0, MARK_BYTES, 0);
    fdatasyncSync(fd);
  }

  /** The same off the event loop: `done(err)` once it is durable, or with what failed. */
  writeInBackground(logFd: number, bytes: number, done: (err: Error | null) => void): void {
    const fd = this.open();
    write(fd, encode(fstatSync(logFd).ino, bytes), 0, MARK_BYTES, 0, (err) => (err !== null ? done(err) : fdatasync(fd, done)));
  }

  /** No mark (every append synced): removed, and the removal synced by the caller's directory sync. */
  remove(): void {
    this.close();
    rmSync(join(this.dir, SYNCED_MARK_FILE), { force: true });
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): number {
    if (this.fd !== undefined) return this.fd;
    const path = join(this.dir, SYNCED_MARK_FILE);
    const created = !existsSync(path);
    this.fd = openSync(path, created ? "w" : "r+");
    if (created) fsyncDirectory(this.dir); // its name must be on disk before the mark in it can matter
    return this.fd;
  }
}
