#!/usr/bin/env bash
# Runs the NATS JetStream benchmark (bench.mjs) with Bun, installing what it
# needs on first use: its own pinned npm client (here, not in the project's
# root), and nats-server from Debian's packages when missing and we are root.
#   bash bench/peers/jetstream/run.sh --mode memory --workload throughput --jobs 100000 --runs 3
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v bun >/dev/null 2>&1; then
  echo "jetstream benchmark: needs Bun (npm install -g bun)" >&2
  exit 1
fi
if [[ ! -d node_modules/nats || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "jetstream benchmark: installing the nats client (package-lock.json) with npm" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
if ! command -v nats-server >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "jetstream benchmark: installing nats-server with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server) >&2
  else
    echo "jetstream benchmark: needs nats-server (Debian: apt-get install -y nats-server)" >&2
    exit 1
  fi
fi
exec bun bench.mjs "$@"
