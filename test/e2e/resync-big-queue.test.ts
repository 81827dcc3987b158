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
/** Measured on the 2-core test machine: 1.5-2.1 s (docs/benchmarks.md); the bound leaves room for a busy host. */
const SYNC_BOUND_MS = 10_000;
/**
 * The stats probe (answered at once) shows the primary's event loop: 9-25 ms p99
 * measured during the resync on a quiet host, 2-13 ms at rest; the target is 50 ms.
 * On this shared 2-core host at a load average of 5-8 some runs see 80-230 ms, so the
 * test bounds p99 at 250 ms: far under what it was (a primary standing still 1.2-1.9 s
 * per snapshot, probes at 5-7 s p99), and not flaky. The submit probe is printed, not
 * bounded: a submission is acknowledged once replicated, and a loading backup holds
 * commits (replica-set.ts) until it holds them, so submits wait about as long as the
 * resync.
 */
const STATS_P99_BOUND_MS = 250;

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
  expectRejoined(await resyncUnderLoad(cluster, { queued: QUEUED, syncTimeoutMs: 3 * SYNC_BOUND_MS }));
}, 120_000);

// With --data-dir the backup also writes the snapshot to disk before it may acknowledge
// anything: written in one go after the load (seconds), it got the backup dropped again and again.
test(`the same with --data-dir: the backup's snapshot file is written as the parts come, and it is not dropped`, async () => {
  expectRejoined(await resyncUnderLoad(cluster, { queued: QUEUED, syncTimeoutMs: 3 * SYNC_BOUND_MS, dataDirRoot: dataRoot }));
}, 120_000);
