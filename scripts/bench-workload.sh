#!/usr/bin/env bash
# Benchmark sweep over workload type through the router, one shard, one worker -w 2
# (the seed's benchmark_workload.sh): a fresh cluster per value on free loopback ports,
# medians of --runs client runs, written to results/workload.csv and results/workload.svg.
exec bash "$(dirname "$0")/bench-sweep.sh" workload "workload type through the router, one shard, one worker -w 2: noop,cpu,sleep,mixed,wordcount; -c 64." "$@"
