#!/usr/bin/env bash
# Makes sure Bun is installed (from npm, the only registry a fresh machine needs)
# and the project's dependencies match bun.lock. Sourced by the other scripts.
set -euo pipefail
BUN_VERSION="${BUN_VERSION:-1.4.5}"
if ! command -v bun >/dev/null 2>&1; then
  echo "installing bun@${BUN_VERSION} with npm" >&2
  npm install -g "bun@${BUN_VERSION}" >&2
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bun install --frozen-lockfile >&2
