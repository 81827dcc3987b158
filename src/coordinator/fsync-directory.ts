// A name created, renamed or removed in a directory is durable only once the
// directory itself is synced: every writer under --data-dir uses this one.

import { closeSync, fsyncSync, openSync } from "node:fs";

export function fsyncDirectory(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
