#!/usr/bin/env bash
# Runs the four benchmark sweeps (workers, shards, clients, workload) one after
# the other, as the seed's run_all.sh did, then lists what they wrote.
# A failing sweep does not stop the others; the exit status says whether any failed.
set -euo pipefail

SWEEPS=(workers shards clients workload)

usage() {
  cat <<'USAGE'
Usage: scripts/bench-all.sh [--build] [--runs N] [--deadline-s S] [--out DIR]

Runs scripts/bench-workers.sh, bench-shards.sh, bench-clients.sh and bench-workload.sh
(each a fresh cluster per value behind a router, on free loopback ports), then lists
results/<sweep>.csv and results/<sweep>.svg. Takes about 3 minutes on 2 cores.

  --build           rebuild dist/ once before the sweeps (otherwise only when a binary is missing)
  --runs N          client runs per value, medians reported (default 3)
  --deadline-s S    client deadline per run (default 30)
  --out DIR         output directory, relative to the repository root (default results)
  -h, --help        print this help

Options that differ per sweep (--values, --tasks, --type, --concurrency) belong on the
single-sweep scripts: scripts/bench-<sweep>.sh --help.
USAGE
}

BUILD=()
ARGS=()
OUT=results
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --build) BUILD=(--build) ;;
    --runs|--deadline-s)
      [[ $# -ge 2 ]] || { echo "bench-all: $1 needs a value" >&2; exit 2; }
      ARGS+=("$1" "$2"); shift ;;
    --out)
      [[ $# -ge 2 ]] || { echo "bench-all: $1 needs a value" >&2; exit 2; }
      OUT=$2; ARGS+=("$1" "$2"); shift ;;
    *) echo "bench-all: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

cd "$(dirname "$0")/.."
FAILED=()
for i in "${!SWEEPS[@]}"; do
  sweep=${SWEEPS[$i]}
  echo "== $sweep"
  # Build at most once: the first sweep builds when asked (or when dist/ is missing).
  extra=()
  if [[ $i -eq 0 ]]; then extra=("${BUILD[@]}"); fi
  if ! bash "scripts/bench-$sweep.sh" "${extra[@]}" "${ARGS[@]}"; then FAILED+=("$sweep"); fi
  echo
done

echo "== outputs"
for sweep in "${SWEEPS[@]}"; do
  ls -l "$OUT/$sweep.csv" "$OUT/$sweep.svg" 2>/dev/null || echo "missing: $OUT/$sweep.csv or $OUT/$sweep.svg"
done
if [[ ${#FAILED[@]} -gt 0 ]]; then
  echo "sweeps with failed tasks or errors: ${FAILED[*]}" >&2
  exit 1
fi
