#!/usr/bin/env bash
# Builds the binaries, starts a local cluster (two shards, one worker, one
# router) on loopback, runs a benchmark against it and prints the results,
# then stops everything and removes its temporary directory (logs and
# write-ahead logs; KEEP_LOGS=1 keeps it, and a failed run always does).
# Ports: BASE_PORT (coordinators) and BASE_PORT+1000 (router); default 5000 and 6000.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
bun run build >&2

BASE_PORT="${BASE_PORT:-5000}"
ROUTER_PORT=$((BASE_PORT + 1000))
LOGS="$(mktemp -d)"
PIDS=()
cleanup() {
  local status=$?
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" -eq 0 ] && [ -z "${KEEP_LOGS:-}" ]; then
    rm -rf "$LOGS"
  else
    echo "logs and write-ahead logs kept in $LOGS" >&2
  fi
}
trap cleanup EXIT

start() { # name logfile args...
  local name=$1 log=$2; shift 2
  "dist/$name" "$@" >"$LOGS/$log" 2>&1 &
  PIDS+=($!)
}
wait_for() { # logfile pattern
  for _ in $(seq 1 200); do grep -q "$2" "$LOGS/$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "quickstart: $1 did not start; its log:" >&2; cat "$LOGS/$1" >&2; exit 1
}

DATA="$LOGS/data"
start coordinator shard0.log -p "$BASE_PORT" --shard 0 --data-dir "$DATA/shard0"
start coordinator shard1.log -p "$((BASE_PORT + 1))" --shard 1 --data-dir "$DATA/shard1"
wait_for shard0.log "listening on"
wait_for shard1.log "listening on"
start worker worker.log --servers "127.0.0.1:$BASE_PORT,127.0.0.1:$((BASE_PORT + 1))" -w 2 --handlers examples/handlers.ts
start router router.log -p "$ROUTER_PORT" -s "127.0.0.1:$BASE_PORT,127.0.0.1:$((BASE_PORT + 1))" --shards 2
wait_for router.log "listening on"
wait_for worker.log "coordinator link up"

echo "cluster up: shards on $BASE_PORT,$((BASE_PORT + 1)) (write-ahead logs in $DATA), router on $ROUTER_PORT (logs in $LOGS)"
echo
bench() { # name client-args...: runs the client, shows its report, keeps its throughput line for the summary
  local name=$1; shift
  dist/client -p "$ROUTER_PORT" "$@" | tee "$LOGS/$name.report"
}
echo "== noop throughput: 100000 tasks, 512 in flight, through the router"
bench noop -n 100000 -c 512 -t noop
echo
echo "== mixed workload (70% short, 20% medium, 10% long): 20000 tasks, 64 in flight"
bench mixed -n 20000 -c 64 -t mixed
echo
echo "== distributed word count: 2000 chunks of 200 words"
bench wordcount -n 2000 -c 64 -t wordcount
echo
echo "== your own handlers (examples/handlers.ts) through the SDK (examples/submit-and-wait.ts)"
bun examples/submit-and-wait.ts "127.0.0.1:$ROUTER_PORT"
echo
echo "== word frequencies as a map/reduce DAG (examples/wordfreq-mapreduce.ts)"
bun examples/wordfreq-mapreduce.ts "127.0.0.1:$ROUTER_PORT"
echo
echo "== summary"
for name in noop mixed wordcount; do
  printf '  %-10s %s\n' "$name" "$(grep -E '^(completed|failed|throughput)' "$LOGS/$name.report" | tr -s ' ' | paste -sd ',' | sed 's/,/, /g')"
done
dist/client stats -p "$ROUTER_PORT" | bun scripts/stats-summary.ts
echo "  (2 retried attempts are expected: the flaky example fails twice on purpose before it succeeds)"
[ -n "${KEEP_LOGS:-}" ] && echo "  logs and write-ahead logs: $LOGS" || echo "  logs and write-ahead logs are removed on exit (KEEP_LOGS=1 keeps them)"
