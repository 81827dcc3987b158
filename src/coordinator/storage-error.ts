// Why a coordinator refuses to start from its --data-dir: a file it cannot
// trust, where, and what the operator can do. Serving from what is left could
// lose acknowledged tasks without anyone noticing, so start-up stops instead.

export class StorageError extends Error {
  constructor(
    /** The damaged file. */
    readonly file: string,
    /** Byte offset in it of the record or field at fault. */
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`${file} at byte offset ${offset}: ${problem}. ${whatToDo(file, offset)}`);
    this.name = "StorageError";
  }
}

function whatToDo(file: string, offset: number): string {
  const fromPeer = "To rebuild this replica from a healthy one, restart it once with --recover-from-peer: its log and snapshot move into a dated set-aside-* directory in the data directory (nothing is deleted) and it loads the primary's snapshot.";
  const alone = file.endsWith("wal.log")
    ? `With no healthy replica, copy the data directory, then keep only what comes before the damage with \`truncate -s ${offset} ${file}\`: every record from there on is lost.`
    : "With no healthy replica, restore the data directory from a backup.";
  return `Not starting: serving without what this file holds could lose acknowledged tasks. ${fromPeer} ${alone}`;
}
