// The primary's view of its backups: who is in sync, what each has
// acknowledged, and so which log index is committed (safe to acknowledge to
// clients). Synchronous replication: commit = the lowest index every in-sync
// backup has applied. With no backup in sync the primary waits up to
// backupTimeoutMs after losing one, then goes on alone (and says so).
// A backup loading a big snapshot (seconds, at a million tasks) is alive while it
// restores parts (progress()), so it is not dropped for being slow.

import type { Logger } from "../cli/log.ts";
import type { Connection } from "../net/connection.ts";
import type { FrameWriter } from "../protocol/codec.ts";

interface Backup {
  conn: Connection;
  ackedIndex: number;
  /** Index the backup must reach (its snapshot's) before it counts for commits. */
  syncedFrom: number;
  inSync: boolean;
  /**
   * Last time its acked index moved, it joined, or it held every entry: a backup
   * that owes an acknowledgement and makes no progress for backupTimeoutMs is dropped.
   */
  progressAt: number;
}

export class ReplicaSet {
  private readonly backups = new Map<number, Backup>();
  private committed = 0;
  /** When the last in-sync backup was lost; undefined while one is in sync or none ever was. */
  private lostAt: number | undefined;
  private aloneLogged = false;

  constructor(
    private readonly backupTimeoutMs: number,
    private readonly log: Logger,
  ) {}

  get inSyncCount(): number {
    let n = 0;
    for (const b of this.backups.values()) if (b.inSync) n++;
    return n;
  }

  get committedIndex(): number {
    return this.committed;
  }

  /**
   * Acknowledging without any backup: none in sync, none catching up, and the
   * grace after losing one is over. A backup that is catching up holds
   * commits: counting it in sync later must not skip entries acknowledged
   * alone in the meantime. (One that stops progressing is dropped after
   * backupTimeoutMs, so this waits at most that long.)
   */
  alone(now: number): boolean {
    if (this.inSyncCount > 0 || this.backups.size > 0) return false;
    return this.lostAt === undefined || now - this.lostAt >= this.backupTimeoutMs;
  }

  /** A backup that was just sent a snapshot at `snapshotIndex`. */
  add(conn: Connection, snapshotIndex: number, now: number): void {
    this.backups.set(conn.id, { conn, ackedIndex: 0, syncedFrom: snapshotIndex, inSync: false, progressAt: now });
  }

  /** A loading backup restored another part of its snapshot: alive, though it acknowledges no entry yet. */
  progress(conn: Connection, now: number): void {
    const b = this.backups.get(conn.id);
    if (b !== undefined) b.progressAt = now;
  }

  has(conn: Connection): boolean {
    return this.backups.has(conn.id);
  }

  ack(conn: Connection, index: number, now: number): void {
    const b = this.backups.get(conn.id);
    if (b === undefined || index <= b.ackedIndex) return;
    b.ackedIndex = index;
    b.progressAt = now;
    if (!b.inSync && index >= b.syncedFrom) {
      b.inSync = true;
      this.lostAt = undefined;
      this.aloneLogged = false;
      this.log.info("backup in sync", { backup: conn.state.nodeId, index });
    }
  }

  /** The primary itself stood still until `now`: its backups' acks are still unread, so their timeouts start over. */
  stalled(now: number, stalledMs: number): void {
    for (const b of this.backups.values()) b.progressAt = Math.min(now, b.progressAt + stalledMs);
    if (this.lostAt !== undefined) this.lostAt = Math.min(now, this.lostAt + stalledMs);
  }

  remove(conn: Connection, now: number, reason: string): void {
    const b = this.backups.get(conn.id);
    if (b === undefined) return;
    this.backups.delete(conn.id);
    if (b.inSync) this.log.warn("backup lost", { backup: conn.state.nodeId, reason, waitMs: this.backupTimeoutMs });
    // The last backup (in sync or catching up) is gone: hold on for backupTimeoutMs in case it returns.
    if (this.backups.size === 0) this.lostAt = now;
  }

  /** Sends one log batch to every backup (in sync or catching up). */
  broadcast(encode: (w: FrameWriter) => void): void {
    sendToEach(this.backups.values(), encode);
  }

  /**
   * The committed index now, given the last index appended. Also drops backups
   * that stopped acknowledging for backupTimeoutMs while behind.
   */
  commit(lastIndex: number, now: number): number {
    let lowest = Infinity;
    for (const b of this.backups.values()) {
      // Holding every entry, it owes nothing and its lag clock stands still: a primary with nothing
      // to do logs nothing for long stretches, and the first entry after one must not find the
      // backup "silent" that long and drop it (then resync it with a whole snapshot).
      if (b.ackedIndex >= lastIndex) b.progressAt = now;
      else if (now - b.progressAt > this.backupTimeoutMs) {
        b.conn.fail("E_UNAVAILABLE", `backup acknowledged nothing for ${this.backupTimeoutMs} ms`);
        this.remove(b.conn, now, "stopped acknowledging");
        continue;
      }
      if (b.inSync && b.ackedIndex < lowest) lowest = b.ackedIndex;
    }
    if (lowest !== Infinity) this.committed = Math.max(this.committed, lowest);
    else if (this.alone(now)) {
      if (!this.aloneLogged && this.lostAt !== undefined) {
        this.log.warn("primary going on alone", { reason: `no backup in sync for ${this.backupTimeoutMs} ms`, risk: "a crash of this node now loses acknowledged tasks" });
        this.aloneLogged = true;
      }
      this.committed = lastIndex;
    }
    return this.committed;
  }

  closeAll(reason: string): void {
    for (const b of this.backups.values()) b.conn.close(reason);
    this.backups.clear();
  }
}

/**
 * One message to every backup that can take it (a slow one is dropped by its own limits, not
 * here), written to its socket now: the primary may block in fsync next (replication-step.ts),
 * and the backups should be receiving meanwhile.
 */
export function sendToEach(backups: Iterable<{ conn: Connection }>, encode: (w: FrameWriter) => void): void {
  for (const b of backups) {
    if (!b.conn.writable()) continue;
    encode(b.conn.writer);
    b.conn.flush();
  }
}
