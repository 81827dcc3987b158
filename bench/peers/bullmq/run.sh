#!/usr/bin/env bash
# Runs the BullMQ + Redis benchmark (bench.mjs), installing what it needs on
# first use: its own pinned npm dependencies (here, not in the project's root),
# and redis-server from Debian's packages when missing and we are root.
#   bash bench/peers/bullmq/run.sh --workload throughput --jobs 100000 --runs 3
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1; then
  echo "bullmq benchmark: needs Node.js (20 or later) and npm" >&2
  exit 1
fi
if [[ ! -d node_modules/bullmq || package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "bullmq benchmark: installing bullmq and ioredis (package-lock.json) with npm" >&2
  npm ci --no-audit --no-fund --loglevel=error >&2
fi
if ! command -v redis-server >/dev/null 2>&1; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "bullmq benchmark: installing redis-server with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >&2
  else
    echo "bullmq benchmark: needs redis-server (Debian: apt-get install -y redis-server)" >&2
    exit 1
  fi
fi
exec node bench.mjs "$@"
