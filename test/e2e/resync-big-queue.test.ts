// A backup restarted under a primary holding 300,000 queued tasks, from the compiled
// binaries. The snapshot (~120 MB as one msgpack value) once took the backup over a
// second to apply in one piece, the primary dropped it for acknowledging nothing for
// --backup-timeout-ms, and the backup asked again, forever. Streamed in parts that
// the backup restores and acknowledges as they come, it is in sync within
// SYNC_BOUND_MS, is never dropped, and the primary keeps answering another client.

import { afterAll, expect, test } from "bun:test";
import { Cluster } from "./harness.ts";
import { resyncUnderLoad } from "./resync-scenario.ts";

const QUEUED = 300_000;
/** Measured on the 2-core test machine: ~2 s (docs/benchmarks.md); the bound leaves room for a busy host. */
const SYNC_BOUND_MS = 15_000;
/**
 * The probe's stats requests (answered without a commit) are what show the primary's
 * event loop. What still stands it still: exportState() of the whole table when the
 * stream starts (~0.2 s at 300k); a submit waits for the backup, which holds commits
 * while it catches up. Both measured and printed; this bound is on the former.
 */
const STATS_P99_BOUND_MS = 1_000;

const cluster = new Cluster();
afterAll(() => cluster.stopAll());

test(`a backup restarted under ${QUEUED.toLocaleString("en")} queued tasks is in sync within ${SYNC_BOUND_MS} ms, never dropped for being slow`, async () => {
  const r = await resyncUnderLoad(cluster, { queued: QUEUED, syncTimeoutMs: 3 * SYNC_BOUND_MS });
  console.log(JSON.stringify(r));
  expect(r.dropped).toBe(false);
  expect(r.syncMs).toBeLessThan(SYNC_BOUND_MS);
  expect(r.statsMsP99).toBeLessThan(STATS_P99_BOUND_MS);
}, 120_000);
