#!/usr/bin/env bash
# Ingest (acknowledged submissions/s, nothing executed): ours with and without
# --batch against BullMQ addBulk and NATS JetStream async publish, alternated,
# medians; prints a Markdown table (see docs/benchmarks.md). About 10 minutes
# on 2 cores with the defaults.
#   scripts/bench-ingest.sh [--build] [bench/ingest.ts options, see --help]
# Installs on first use: bench/peers/{bullmq,jetstream}'s pinned npm packages
# (not the project's), and redis-server and nats-server from Debian's packages
# when missing (as root).
set -euo pipefail
source "$(dirname "$0")/bench-args.sh" "$@"
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
source scripts/ensure-built.sh
exec bun bench/ingest.ts "${ARGS[@]}"
