#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, typecheck, build the five
# binaries (the e2e tests run them), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
# The top dashboard is tested in a real terminal under tmux; install it where we can.
if ! command -v tmux >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq tmux) >/dev/null 2>&1 || echo "tmux could not be installed; the tmux test will be skipped" >&2
fi
bun run typecheck
bun run build
bun test --timeout 120000 "$@"
