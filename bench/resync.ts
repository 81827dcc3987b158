// Resync time and the primary's latency to another client while a restarted backup
// loads a big queue, from the compiled binaries (static --peer pair, loopback).
//   bun bench/resync.ts [queued ...]            e.g. bun bench/resync.ts 100000 300000 1000000
//   BIG=300 bun bench/resync.ts 0               300 queued tasks of 1 MB each
//   DATA_DIR=1 bun bench/resync.ts 300000        each coordinator with --data-dir (under a temp dir)
//   BACKUP_NICE=19 bun bench/resync.ts 300000    the restarted backup at that nice value (as the e2e test runs it)
// One CSV line per size.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "../test/e2e/harness.ts";
import { resyncUnderLoad } from "../test/e2e/resync-scenario.ts";

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(100_000, 300_000, 1_000_000);
const big = Number(process.env.BIG ?? 0);
const backupNice = process.env.BACKUP_NICE === undefined ? undefined : Number(process.env.BACKUP_NICE);
const columns = ["queued", "syncMs", "startMs", "probes", "restStatsMsP99", "statsMsP50", "statsMsP99", "statsMsMax", "submitMsP50", "submitMsP99", "submitMsMax", "snapshots", "primaryRssMB", "sentMs", "appliedMs"] as const;
console.log(columns.join(","));
for (const queued of sizes) {
  const cluster = new Cluster();
  const dataDirRoot = process.env.DATA_DIR ? mkdtempSync(join(tmpdir(), "resync-")) : undefined;
  try {
    const args = ["--max-queue", String(queued + big + 200_000)];
    const r = await resyncUnderLoad(cluster, { queued, bigPayloads: big, bigPayloadBytes: 1 << 20, syncTimeoutMs: 180_000, args, dataDirRoot, backupNice });
    console.log(columns.map((c) => r[c]).join(","));
  } finally {
    await cluster.stopAll();
    if (dataDirRoot !== undefined) rmSync(dataDirRoot, { recursive: true, force: true });
  }
}
