#!/usr/bin/env bash
# Ours against BullMQ + Redis on the same three workloads (issue 10): no-op
# throughput, latency at a fixed offered rate (open loop), a closed loop of 64
# clients. Ours via the full path (client -> router -> primary + backup ->
# worker) and via one coordinator alone; medians of --runs runs; prints a
# Markdown table with ours/theirs ratios and writes results/compare.csv.
# Takes about 3 minutes on 2 cores.
#   scripts/bench-compare.sh [--build] [bench/compare.ts options, see --help]
# Installs on first use: bench/peers/bullmq's pinned npm packages (not the
# project's), and redis-server from Debian's packages when missing (as root).
set -euo pipefail
source "$(dirname "$0")/bench-args.sh" "$@"
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
source scripts/ensure-built.sh
exec bun bench/compare.ts "${ARGS[@]}"
