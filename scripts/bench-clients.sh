#!/usr/bin/env bash
# Benchmark sweep over client concurrency -c through the router, one shard, one worker -w 2
# (the seed's benchmark_clients.sh): a fresh cluster per value on free loopback ports,
# medians of --runs client runs, written to results/clients.csv and results/clients.svg.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: scripts/bench-clients.sh [--build] [sweep options]

Sweeps client concurrency -c through the router, one shard, one worker -w 2: 1,8,64,256,1024; noop.
Writes results/clients.csv (sweep,value,throughput,p50,p95,p99,max,completed,failed; latencies in ms)
and results/clients.svg (throughput and p99 latency against the swept value), and prints the table.

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

BUILD=0
ARGS=()
for arg in "$@"; do
  case "$arg" in
    -h|--help) usage; exit 0 ;;
    --build) BUILD=1 ;;
    *) ARGS+=("$arg") ;;
  esac
done

cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
for bin in coordinator worker router client; do
  [[ -x "dist/$bin" ]] || BUILD=1
done
if [[ "$BUILD" == 1 ]]; then
  bun scripts/build.ts coordinator worker router client >&2
fi
exec bun bench/sweep.ts clients "${ARGS[@]}"
