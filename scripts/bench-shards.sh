#!/usr/bin/env bash
# Benchmark sweep over shards (coordinators) behind one router, one worker -w 2 serving all
# (the seed's benchmark_shards.sh): a fresh cluster per value on free loopback ports,
# medians of --runs client runs, written to results/shards.csv and results/shards.svg.
exec bash "$(dirname "$0")/bench-sweep.sh" shards "shards (coordinators) behind one router, one worker -w 2 serving all: 1,2,3; noop, -c 256." "$@"
