#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, typecheck, build the five
# binaries (the e2e tests run them), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
# The top dashboard is tested in a real terminal under tmux, and TLS with a throwaway CA
# made by openssl (scripts/make-test-ca.sh); install them where we can.
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC2086 # one word per package
  (apt-get update -qq && apt-get install -y -qq $missing) >/dev/null 2>&1 || echo "could not install:$missing (the tmux test is skipped without tmux; the TLS tests need openssl)" >&2
fi
bun run typecheck
bun run build
bun test --timeout 120000 "$@"
