#!/usr/bin/env bash
# Failover time of an etcd-led replica group (three coordinators of one shard,
# a router, a worker; one etcd on loopback with --heartbeat-interval 25
# --election-timeout 250, so a 1 s lease is granted as 1 s). Per trial a fresh
# group, then one fault on its primary: kill -9, or cut from etcd alone (its
# etcd traffic runs through a proxy in the bench process that is cut). Prints
# each trial and median/p99/max per fault; writes results/failover.csv.
# About 2 s per trial: the default 20 trials of each fault take ~1.5 minutes.
#   scripts/bench-failover.sh [--build] [bench/etcd-failover.ts options, see --help]
# Installs etcd from Debian's packages when it is missing (as root).
set -euo pipefail

usage() {
  cat <<USAGE
Usage: scripts/bench-failover.sh [--build] [options]

  --build                 rebuild dist/ first (otherwise built only when a binary is missing)
  --trials N              trials per fault (default 20)
  --faults kill,cut       which faults (default both)
  --lease-ttl-ms MS       the coordinators' --etcd-lease-ttl-ms (default 1000)
  --cut-mode MODE         reset: the cut drops the primary's etcd connections and refuses new
                          ones (default); blackhole: they stay open and carry nothing
  --out FILE              CSV path, relative to the repository root (default results/failover.csv)
  -h, --help              print this help

CSV columns: fault,trial,failover_ms,fenced_ms,promoted_ms,lease_ttl_ms,cut_mode (ms from the fault:
failover = first acknowledgement of a probe by the new primary; fenced = the old primary stopped
acting (cut only); promoted = the new primary's promotion).
USAGE
}

source "$(dirname "$0")/bench-args.sh" "$@"

cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
source scripts/ensure-built.sh
source scripts/ensure-etcd.sh
exec bun bench/etcd-failover.ts "${ARGS[@]}"
