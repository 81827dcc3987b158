// What another client sees of a primary while it compacts its write-ahead log
// (--data-dir: past --wal-bytes-max, a snapshot of the whole state replaces the log),
// from the compiled binaries: a queue of N tasks behind a busy worker slot, then
// submissions go on until the primary writes a snapshot, while a probe asks for stats.
//   bun bench/wal-compaction.ts [queued ...]     e.g. bun bench/wal-compaction.ts 300000 1000000
// One CSV line per size: the stats probe's latencies from the first submission after
// the fill until the snapshot was written (and 200 ms after), and the longest stall
// the primary logged ("this process stood still").

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "../test/e2e/harness.ts";
import { bigQueuePair, fill, primaryStats, quantile } from "../test/e2e/resync-scenario.ts";

/** Small enough that a few batches of submissions pass it; the fill compacts too, before the probe starts. */
const WAL_BYTES_MAX = 8 * 1024 * 1024;
const SUBMIT_BATCHES_MAX = 1_000;
const PROBES_MAX = 100_000;
const WINDOW_MS_MAX = 120_000;

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(300_000, 1_000_000);
const columns = ["queued", "probes", "statsMsP50", "statsMsP99", "statsMsMax", "snapshotMs", "stallMsMax"] as const;
console.log(columns.join(","));
for (const queued of sizes) {
  const cluster = new Cluster();
  const dataDirRoot = mkdtempSync(join(tmpdir(), "wal-compaction-"));
  try {
    const args = ["--max-queue", String(queued + 200_000), "--wal-bytes-max", String(WAL_BYTES_MAX)];
    const pair = await bigQueuePair(cluster, { queued, args, dataDirRoot }, true);
    const mark = pair.primary.output().length;
    const since = () => pair.primary.output().slice(mark);
    let writtenAt = 0;
    const deadline = performance.now() + WINDOW_MS_MAX;
    const running = () => performance.now() < deadline && (writtenAt === 0 || performance.now() < writtenAt + 200);
    const statsMs: number[] = [];
    const probe = async () => {
      for (let i = 0; i < PROBES_MAX && running(); i++) {
        const t0 = performance.now();
        await primaryStats(pair.client);
        statsMs.push(performance.now() - t0);
        if (writtenAt === 0 && since().includes('"event":"snapshot written"')) writtenAt = performance.now();
        await Bun.sleep(10);
      }
    };
    const submit = async () => {
      for (let i = 0; i < SUBMIT_BATCHES_MAX && writtenAt === 0 && running(); i++) await fill(pair.client, 1_000, "x".repeat(32), `more-${i}`, 1_000);
    };
    await Promise.all([probe(), submit()]);
    pair.client.close();
    const lines = since().split("\n");
    const written = lines.find((l) => l.includes('"event":"snapshot written"'));
    const stalls = lines.filter((l) => l.includes("stood still")).map((l) => Number(JSON.parse(l).stalledMs));
    const r = {
      queued: pair.total, probes: statsMs.length,
      statsMsP50: quantile(statsMs, 0.5), statsMsP99: quantile(statsMs, 0.99), statsMsMax: quantile(statsMs, 1),
      snapshotMs: written === undefined ? NaN : Number(JSON.parse(written).ms), stallMsMax: Math.max(0, ...stalls),
    };
    console.log(columns.map((c) => r[c]).join(","));
  } finally {
    await cluster.stopAll();
    rmSync(dataDirRoot, { recursive: true, force: true });
  }
}
