#!/usr/bin/env bash
# Runs the BullMQ + Redis benchmark (bench.mjs), installing what it needs on
# first use: its own pinned npm dependencies (here, not in the project's root),
# and redis-server from Debian's packages when missing and we are root.
#   bash bench/peers/bullmq/run.sh --workload throughput --jobs 100000 --runs 3
set -euo pipefail
cd "$(dirname "$0")"
source ../shared/first-use.sh
need_command "bullmq benchmark" node "Node.js (20 or later) and npm"
ensure_npm "bullmq benchmark" bullmq "bullmq and ioredis"
ensure_debian "bullmq benchmark" redis-server redis-server
exec node bench.mjs "$@"
