#!/usr/bin/env bash
# Ours against BullMQ + Redis and NATS JetStream (memory, file, file R3 on 3
# nodes) on the same workloads: no-op throughput (512 in flight), latency at a
# fixed offered rate (open loop), a closed loop of 64 clients. Ours via the
# full path (client -> router -> primary + backup -> worker), the same with
# --data-dir (fsync before each acknowledgement, and every 100 ms), and one
# coordinator alone; medians of --runs runs; prints a
# Markdown table with ours/theirs ratios and writes results/compare.csv.
# Takes about 20 minutes on 2 cores (--systems picks some).
#   scripts/bench-compare.sh [--build] [bench/compare.ts options, see --help]
# Installs on first use: bench/peers/{bullmq,jetstream}'s pinned npm packages
# (not the project's), and redis-server and nats-server from Debian's packages
# when missing (as root).
set -euo pipefail
source "$(dirname "$0")/bench-args.sh" "$@"
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
source scripts/ensure-built.sh
exec bun bench/compare.ts "${ARGS[@]}"
