#!/usr/bin/env bash
# The shared body of scripts/bench-<sweep>.sh: parses --build/--help, builds the
# binaries when needed, and runs bench/sweep.ts for one sweep (a fresh cluster per
# value on free loopback ports, medians of --runs client runs, results/<sweep>.csv
# and results/<sweep>.svg).
#   scripts/bench-sweep.sh SWEEP "DESCRIPTION" [--build] [sweep options]
set -euo pipefail
SWEEP=$1
DESCRIPTION=$2
shift 2

usage() {
  cat <<USAGE
Usage: scripts/bench-$SWEEP.sh [--build] [sweep options]

Sweeps $DESCRIPTION
Writes results/$SWEEP.csv (sweep,value,throughput,p50,p95,p99,max,completed,failed; latencies in ms)
and results/$SWEEP.svg (throughput and p99 latency against the swept value), and prints the table.

  --build           rebuild dist/ first (otherwise built only when a binary is missing)
  --runs N          client runs per value, medians reported (default 3)
  --tasks N         tasks per run (default chosen per value, ~1-3 s per run)
  --deadline-s S    client deadline per run (default 30; the client is killed 15 s past it)
  --values a,b,c    values to sweep instead of the defaults
  --concurrency N   client -c where the sweep does not vary it
  --type T          client -t where the sweep does not vary it
  --out DIR         output directory, relative to the repository root (default results)
  --replot          measure nothing: redraw the SVG from the CSV in --out
  -h, --help        print this help
USAGE
}

source "$(dirname "$0")/bench-args.sh" "$@"

cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
source scripts/ensure-built.sh
exec bun bench/sweep.ts "$SWEEP" "${ARGS[@]}"
