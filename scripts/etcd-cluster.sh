#!/usr/bin/env bash
# A replicated cluster on etcd, on one machine: starts etcd, two shards of three
# coordinator replicas each (every replica with its own write-ahead log), a
# worker and a router that find the coordinators through etcd, then runs a
# benchmark, kills the primary of shard 0 with kill -9 in the middle of a second
# run, and prints how long the shard had no primary. Everything stops at the end
# (Ctrl-C too). KEEP=1 leaves the cluster running until Ctrl-C instead.
# Ports: BASE_PORT.. (coordinators), BASE_PORT+1000 (router), ETCD_PORT (etcd).
# Needs etcd (Debian: apt-get install etcd-server; installed here when missing and root).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
source scripts/ensure-etcd.sh
source scripts/ensure-built.sh

BASE_PORT="${BASE_PORT:-5000}"
ROUTER_PORT=$((BASE_PORT + 1000))
ETCD_PORT="${ETCD_PORT:-2379}"
ETCD="127.0.0.1:$ETCD_PORT"
LOGS="$(mktemp -d)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "${KEEP_LOGS:-0}" = 1 ] || rm -rf "$LOGS"
}
trap cleanup EXIT

start() { # logfile command args...
  local log=$1; shift
  "$@" >"$LOGS/$log" 2>&1 &
  PIDS+=($!)
}
wait_for() { # logfile pattern
  for _ in $(seq 1 300); do grep -q "$2" "$LOGS/$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "etcd-cluster: $1 did not get to '$2'; its log:" >&2; cat "$LOGS/$1" >&2; exit 1
}

# etcd's default timing (100 ms heartbeat, 1 s election) raises a 1 s lease to 2 s; these keep 1 s leases,
# so a lost primary is replaced in about a second. --pre-vote: a member back from a partition does not
# force an election (which would stall keep-alives past a 1 s lease in a multi-member etcd).
start etcd.log etcd --name local --data-dir "$LOGS/etcd" \
  --listen-client-urls "http://$ETCD" --advertise-client-urls "http://$ETCD" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "local=http://127.0.0.1:$((ETCD_PORT + 1))" --heartbeat-interval 25 --election-timeout 250 --pre-vote
wait_for etcd.log "ready to serve client requests"

port=$BASE_PORT
for shard in 0 1; do
  for replica in a b c; do
    start "shard$shard-$replica.log" dist/coordinator -p "$port" --shard "$shard" --node-id "shard$shard-$replica" \
      --etcd "$ETCD" --data-dir "$LOGS/data/shard$shard-$replica"
    port=$((port + 1))
  done
done
start worker.log dist/worker --etcd "$ETCD" -w 2
start router.log dist/router -p "$ROUTER_PORT" --etcd "$ETCD"
wait_for router.log "listening on"
for shard in 0 1; do
  for replica in a b c; do wait_for "shard$shard-$replica.log" '"event":"\(promoted to primary\|following primary\)"'; done
done
stats() { dist/client stats -p "$ROUTER_PORT"; }
# Both shards led, each with two backups in sync.
for _ in $(seq 1 200); do
  stats 2>/dev/null | bun -e 'const s = JSON.parse(await Bun.stdin.text()); const p = s.coordinators.filter((c) => c.stats?.primary && c.stats.replication.backupsInSync === 2); process.exit(p.length === 2 ? 0 : 1)' && break
  sleep 0.1
done
echo "cluster up: etcd on $ETCD, coordinators on $BASE_PORT..$((port - 1)) (2 shards x 3 replicas), router on $ROUTER_PORT (logs in $LOGS)"

if [ "${KEEP:-0}" = 1 ]; then
  echo "KEEP=1: running until Ctrl-C"
  KEEP_LOGS=1
  wait
fi

echo
echo "== noop throughput: 100000 tasks, 512 in flight, through the router"
dist/client -p "$ROUTER_PORT" -n 100000 -c 512 -t noop
echo
echo "== kill -9 of shard 0's primary during a mixed run of 20000 tasks (64 in flight): nothing may be lost"
primary=$(stats | bun -e 'const s = JSON.parse(await Bun.stdin.text()); console.log(s.coordinators.find((c) => c.stats?.primary && c.stats.shard === 0).stats.nodeId)')
pid_of() { pgrep -f -- "--node-id $1 " | head -1; }
dist/client -p "$ROUTER_PORT" -n 20000 -c 64 -t mixed &
client=$!
sleep 1
victim=$(pid_of "$primary")
killed_at=$(date +%s%3N)
kill -9 "$victim"
echo "killed $primary (pid $victim)"
wait "$client"
for _ in $(seq 1 200); do
  grep -h '"promoted to primary"' "$LOGS"/shard0-*.log | grep -v "\"$primary\"" >/dev/null && break
  sleep 0.05
done
promoted_at=$(grep -h '"promoted to primary"' "$LOGS"/shard0-*.log | bun -e '
  const lines = (await Bun.stdin.text()).trim().split("\n").map((l) => JSON.parse(l));
  console.log(Math.max(...lines.map((l) => Date.parse(l.ts))));')
echo "shard 0 had a new primary $((promoted_at - killed_at)) ms after the kill"
echo
echo "== replicas (the killed one left etcd with its lease, so the router no longer lists it)"
stats | bun -e '
  const s = JSON.parse(await Bun.stdin.text());
  for (const c of s.coordinators) {
    const t = c.stats;
    if (t === undefined) { console.log(`  ${c.address.padEnd(16)} unreachable`); continue; }
    console.log(`  ${c.address.padEnd(16)} ${t.nodeId.padEnd(9)} shard ${t.shard}  ${t.replication.role.padEnd(7)} epoch ${t.epoch}  in-sync backups ${t.replication.backupsInSync}  submitted ${t.submitted}  completed ${t.completed}  failed ${t.failed}`);
  }'
