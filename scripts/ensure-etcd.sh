#!/usr/bin/env bash
# Makes sure etcd is on PATH for a script that starts one: installs Debian's
# etcd-server with apt-get when missing (as root), or stops with how to get it.
# Sourced by scripts/etcd-cluster.sh and scripts/bench-failover.sh.
if ! command -v etcd >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
    echo "installing etcd-server with apt-get" >&2
    (apt-get update -qq && apt-get install -y -qq etcd-server) >/dev/null
  else
    echo "$(basename "$0"): needs etcd (Debian: sudo apt-get install etcd-server)" >&2
    exit 1
  fi
fi
