// What another client sees of a primary while it compacts its write-ahead log
// (--data-dir: past --wal-bytes-max, a snapshot of the whole state replaces the log),
// from the compiled binaries: a queue of N tasks behind a busy worker slot (the backup
// killed, so only the primary writes), then submissions go on, 1,000 every SUBMIT_GAP_MS,
// until the primary has written a snapshot it began after the fill, while a probe asks
// for stats every 10 ms.
//   bun bench/wal-compaction.ts [queued ...]     e.g. bun bench/wal-compaction.ts 300000 1000000
// One CSV line per size: the probes waiting at any time while that snapshot was being
// written (from its log line: written at `ts`, begun `ms` before), their latencies, and the longest stall
// the primary logged ("this process stood still"; none below its stall threshold).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "../test/e2e/harness.ts";
import { bigQueuePair, fill, primaryStats, quantile } from "../test/e2e/resync-scenario.ts";

/** Small enough that a few seconds of submissions pass it. */
const WAL_BYTES_MAX = 8 * 1024 * 1024;
const SUBMIT_BATCHES_MAX = 2_000;
/** Paced: a flood of submissions would make every turn of the primary's event loop long, and the compaction with it. */
const SUBMIT_GAP_MS = 50;
const PROBES_MAX = 100_000;
const RUN_MS_MAX = 180_000;

interface Written { startedAt: number; endedAt: number; ms: number; keptLogBytes: number }

/** Snapshots the primary wrote, begun after `after` (wall clock), from its log. Without `ms` (written in one go), begun when written. */
function snapshotsWritten(output: string, after: number): Written[] {
  return output.split("\n").filter((l) => l.includes('"event":"snapshot written"')).map((l) => {
    const line = JSON.parse(l);
    const endedAt = Date.parse(line.ts);
    const ms = Number(line.ms ?? 0);
    return { startedAt: endedAt - ms, endedAt, ms, keptLogBytes: Number(line.keptLogBytes ?? 0) };
  }).filter((w) => w.startedAt > after);
}

const sizes = process.argv.slice(2).map(Number);
if (sizes.length === 0) sizes.push(300_000, 1_000_000);
const columns = ["queued", "probes", "statsMsP50", "statsMsP99", "statsMsMax", "snapshotMs", "keptLogBytes", "stallMsMax"] as const;
console.log(columns.join(","));
for (const queued of sizes) {
  const cluster = new Cluster();
  const dataDirRoot = mkdtempSync(join(tmpdir(), "wal-compaction-"));
  try {
    const args = ["--max-queue", String(queued + SUBMIT_BATCHES_MAX * 1_000), "--wal-bytes-max", String(WAL_BYTES_MAX)];
    const pair = await bigQueuePair(cluster, { queued, args, dataDirRoot }, true);
    const mark = pair.primary.output().length;
    const markedAt = Date.now();
    const since = () => pair.primary.output().slice(mark);
    const deadline = performance.now() + RUN_MS_MAX;
    const running = () => performance.now() < deadline && snapshotsWritten(since(), markedAt).length === 0;
    const probes: Array<{ at: number; ms: number }> = [];
    const probe = async () => {
      for (let i = 0; i < PROBES_MAX && running(); i++) {
        const at = Date.now();
        const t0 = performance.now();
        await primaryStats(pair.client);
        probes.push({ at, ms: performance.now() - t0 });
        await Bun.sleep(10);
      }
    };
    const submit = async () => {
      for (let i = 0; i < SUBMIT_BATCHES_MAX && running(); i++) {
        await fill(pair.client, 1_000, "x".repeat(32), `more-${i}`, 1_000);
        await Bun.sleep(SUBMIT_GAP_MS);
      }
    };
    await Promise.all([probe(), submit()]);
    pair.client.close();
    const written = snapshotsWritten(since(), markedAt)[0];
    if (written === undefined) throw new Error(`no snapshot written in ${RUN_MS_MAX} ms`);
    // A probe counts if it was waiting at any time while the snapshot was written (one written in one go has no duration).
    const during = probes.filter((p) => p.at <= written.endedAt && p.at + p.ms >= written.startedAt).map((p) => p.ms);
    const stalls = since().split("\n").filter((l) => l.includes("stood still")).map((l) => Number(JSON.parse(l).stalledMs));
    const r = {
      queued: pair.total, probes: during.length,
      statsMsP50: quantile(during, 0.5), statsMsP99: quantile(during, 0.99), statsMsMax: quantile(during, 1),
      snapshotMs: written.ms, keptLogBytes: written.keptLogBytes, stallMsMax: Math.max(0, ...stalls),
    };
    console.log(columns.map((c) => r[c]).join(","));
  } finally {
    await cluster.stopAll();
    rmSync(dataDirRoot, { recursive: true, force: true });
  }
}
