#!/usr/bin/env bash
# Makes sure the binaries a benchmark spawns are in dist/: builds them when
# BUILD=1 (the caller's --build) or when one is missing. Sourced by the bench
# scripts after scripts/ensure-bun.sh.
set -euo pipefail
BENCH_BINARIES=(coordinator worker router client)
for bin in "${BENCH_BINARIES[@]}"; do
  [[ -x "dist/$bin" ]] || BUILD=1
done
if [[ "${BUILD:-0}" == 1 ]]; then
  bun scripts/build.ts "${BENCH_BINARIES[@]}" >&2
fi
