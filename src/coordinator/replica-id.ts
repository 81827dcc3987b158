// A coordinator's incarnation id for etcd's in-sync replica set. A node that
// restarts with its write-ahead log still holds what it acknowledged, so it keeps
// its id (kept in the data directory); one that restarts without data holds
// nothing, so it must come back as a stranger, never as an ISR member. So must one
// whose data was set aside (--recover-from-peer): recovery.ts takes a new id for it.

import { randomBytes } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { fsyncDirectory } from "./fsync-directory.ts";
import { join } from "node:path";

export const REPLICA_ID_FILE = "replica-id";

export function replicaIdFor(nodeId: string, dataDir: string): string {
  if (dataDir === "") return `${nodeId}-${randomBytes(6).toString("hex")}`;
  const path = join(dataDir, REPLICA_ID_FILE);
  if (existsSync(path)) {
    const id = readFileSync(path, "utf8").trim();
    if (/^[\w.:-]{1,128}$/.test(id)) return id;
    throw new Error(`${path} does not hold a replica id; remove it only if this node's data is gone too`);
  }
  mkdirSync(dataDir, { recursive: true });
  const id = `${nodeId}-${randomBytes(6).toString("hex")}`;
  // Written whole or not at all, and synced: the id must not outlive or predate the log it stands for.
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  writeSync(fd, `${id}\n`);
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
  fsyncDirectory(dataDir);
  return id;
}
