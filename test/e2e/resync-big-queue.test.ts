// A backup restarted under a primary holding 300,000 queued tasks, from the compiled
// binaries. The snapshot (~120 MB as one msgpack value) once took the backup over a
// second to apply in one piece, the primary dropped it for acknowledging nothing for
// --backup-timeout-ms, and the backup asked again, forever; building each snapshot
// stood the primary still for seconds. Now the primary cuts parts from its live state
// between other work and the backup restores and acknowledges each as it comes: it is
// in sync within SYNC_BOUND_MS, never dropped, and another client's requests are
// answered within STATS_P99_BOUND_MS at p99 meanwhile (see there for the figures).

import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster } from "./harness.ts";
import { resyncUnderLoad, type ResyncResult } from "./resync-scenario.ts";

const QUEUED = 300_000;
/**
 * Measured on the 2-core test machine: 1.5-2.1 s on a quiet host, 1.9-6.8 s with the backup at
 * BACKUP_NICE under others' load (load average 7-11, docs/benchmarks.md); the bound leaves room.
 */
const SYNC_BOUND_MS = 15_000;
/**
 * The stats probe (answered at once) shows the primary's event loop; the bound is on its p99
 * over the resync (130-450 probes, one every ~10 ms), not its max. The target is 50 ms. What
 * the primary itself does per event-loop turn is a few ms: cutting and encoding one ~128 KiB
 * part takes 0.6-0.8 ms at p50 and ~5 ms at p99 (`bun bench/snapshot-steps.ts`, one process,
 * 300k and 1M tasks; docs/benchmarks.md). What is left is the host, 2 cores shared with other work (load
 * average 6-10): with the restarted backup decoding at full speed on one of the two cores,
 * ten runs gave p99s of 10-154 ms (and the same primary at rest, before the restart, up to
 * 318 ms). Replicas run on separate hosts, so the backup runs here at BACKUP_NICE, the
 * lowest CPU priority: then the primary's p99 was 7-38 ms in 14 runs at load 7-11 (under the
 * 50 ms target in every one), its max 16-180 ms. The bound is twice the target, for headroom
 * on a host others load more; it fails a primary that stands still for its snapshot (before
 * the streamed export: 1.2-1.9 s per snapshot, probes at 5-7 s p99). The submit probe is printed, not bounded: a
 * submission is acknowledged once replicated, and a loading backup holds commits
 * (replica-set.ts) until it holds them, so submits wait about as long as the resync.
 */
const STATS_P99_BOUND_MS = 100;
/** Nice value of the restarted backup: see STATS_P99_BOUND_MS. */
const BACKUP_NICE = 19;

const dataRoot = mkdtempSync(join(tmpdir(), "resync-big-queue-"));
const cluster = new Cluster();
afterAll(async () => {
  await cluster.stopAll();
  rmSync(dataRoot, { recursive: true, force: true });
});

function expectRejoined(r: ResyncResult): void {
  console.log(JSON.stringify(r));
  expect(r.snapshots).toBe(1); // never dropped and sent another
  expect(r.syncMs).toBeLessThan(SYNC_BOUND_MS);
  expect(r.statsMsP99).toBeLessThan(STATS_P99_BOUND_MS);
}

test(`a backup restarted under ${QUEUED.toLocaleString("en")} queued tasks is in sync within ${SYNC_BOUND_MS} ms, never dropped for being slow`, async () => {
  expectRejoined(await resyncUnderLoad(cluster, { queued: QUEUED, syncTimeoutMs: 3 * SYNC_BOUND_MS, backupNice: BACKUP_NICE }));
}, 120_000);

// With --data-dir the backup also writes the snapshot to disk before it may acknowledge
// anything: written in one go after the load (seconds), it got the backup dropped again and again.
test(`the same with --data-dir: the backup's snapshot file is written as the parts come, and it is not dropped`, async () => {
  expectRejoined(await resyncUnderLoad(cluster, { queued: QUEUED, syncTimeoutMs: 3 * SYNC_BOUND_MS, dataDirRoot: dataRoot, backupNice: BACKUP_NICE }));
}, 120_000);
