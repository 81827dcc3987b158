#!/usr/bin/env bash
# Runs the NATS JetStream benchmark (bench.mjs) with Bun, installing what it
# needs on first use: its own pinned npm client (here, not in the project's
# root), and nats-server from Debian's packages when missing and we are root.
#   bash bench/peers/jetstream/run.sh --mode memory --workload throughput --jobs 100000 --runs 3
set -euo pipefail
cd "$(dirname "$0")"
source ../shared/first-use.sh
need_command "jetstream benchmark" bun "Bun (npm install -g bun)"
ensure_npm "jetstream benchmark" nats "the nats client"
ensure_debian "jetstream benchmark" nats-server nats-server
exec bun bench.mjs "$@"
