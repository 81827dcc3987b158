// The open src bugs the replica group simulation found (replica-group-sim.test.ts),
// and how the simulated shell steps around each until src is fixed, so that
// everything else can still be checked. To watch it find one again:
//   REPLICA_BUGS=name REPLICA_SEED=N REPLICA_STEPS=S bun test test/sim/replica-group-sim -t "replica group:"
// (N and S for each are in REPRODUCTIONS in the test; REPLICA_TRACE=1 prints the run.)
// A new one gets a switch here, `name: !reenabled.has("name")`, with what it is,
// a run that shows it, and what is true instead; the shell tests it where it steps
// around the bug. Once src is fixed: remove the switch and the workaround it guards,
// make the shell mirror the fix, and move its reproduction to REGRESSIONS in the test.
// None is open: the five fixed in 952fa0f, settleIsrOnlyWhenAnswered (a lost ISR
// write read back too early, fixed in 872996a) and a replaced link's late close
// clearing the new link's snapshot request (aeee95e) are regressions there now.

const reenabled = new Set((process.env.REPLICA_BUGS ?? "").split(",").filter((s) => s !== ""));

export const KNOWN_BUGS: Record<string, boolean> = {};

for (const name of reenabled) {
  if (!(name in KNOWN_BUGS)) throw new Error(`REPLICA_BUGS: ${name} is no open bug (replica-group-known-bugs.ts); a fixed one is a regression in replica-group-sim.test.ts`);
}
