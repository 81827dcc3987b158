// Reads `client stats` JSON on stdin and prints one line per shard for people:
// what was submitted, completed, failed for good, is still queued, and how many
// attempts were retried. Used at the end of scripts/quickstart.sh.

import type { ClusterStats } from "../src/protocol/messages.ts";

const stats = JSON.parse(await new Response(Bun.stdin.stream()).text()) as ClusterStats;
for (const c of stats.coordinators) {
  const s = c.stats;
  if (!c.reachable || s === undefined) {
    console.log(`  ${c.address}: unreachable${c.error ? ` (${c.error})` : ""}`);
    continue;
  }
  const parts = [`${s.submitted} submitted`, `${s.completed} completed`, `${s.failed} failed for good (dead-lettered)`, `${s.queued} queued`, `${s.retried} attempts retried`];
  console.log(`  shard ${s.shard} (${c.address}, ${s.replication.role}): ${parts.join(", ")}`);
}
