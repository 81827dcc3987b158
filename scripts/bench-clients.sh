#!/usr/bin/env bash
# Benchmark sweep over client concurrency -c through the router, one shard, one worker -w 2
# (the seed's benchmark_clients.sh): a fresh cluster per value on free loopback ports,
# medians of --runs client runs, written to results/clients.csv and results/clients.svg.
exec bash "$(dirname "$0")/bench-sweep.sh" clients "client concurrency -c through the router, one shard, one worker -w 2: 1,8,64,256,1024; noop." "$@"
