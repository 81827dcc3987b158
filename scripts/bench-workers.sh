#!/usr/bin/env bash
# Benchmark sweep over worker processes (each -w 1) serving one shard
# (the seed's benchmark_workers.sh): a fresh cluster per value on free loopback ports,
# medians of --runs client runs, written to results/workers.csv and results/workers.svg.
exec bash "$(dirname "$0")/bench-sweep.sh" workers "worker processes (each -w 1) serving one shard: 1,2,4; mixed workload, -c 64." "$@"
