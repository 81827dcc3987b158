#!/usr/bin/env bash
# The whole test suite, as CI runs it: install, typecheck, build the five
# binaries (the e2e tests run them), then every test.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/ensure-bun.sh
# The top dashboard is tested in a real terminal under tmux, TLS with a throwaway CA
# made by openssl (scripts/make-test-ca.sh), etcd mode against a real etcd, the
# router's web dashboard in headless chromium, the gRPC API from Python's grpcio,
# and the fault harness (test/jepsen) in network namespaces with iptables and libfaketime;
# install them where we can (each test says why it skips when one is missing).
missing=""
command -v tmux >/dev/null 2>&1 || missing="$missing tmux"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v etcd >/dev/null 2>&1 || missing="$missing etcd-server"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v iptables >/dev/null 2>&1 || missing="$missing iptables"
command -v faketime >/dev/null 2>&1 || missing="$missing faketime"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing="$missing chromium"
# The gRPC API is called from Python stubs generated from proto/ (test/e2e/grpc-python.test.ts).
/usr/bin/python3 -c "import grpc, grpc_tools" >/dev/null 2>&1 || missing="$missing python3-grpcio python3-grpc-tools"
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  # shellcheck disable=SC2086 # one word per package
  (apt-get update -qq && apt-get install -y -qq $missing) >/dev/null 2>&1 || echo "could not install:$missing (tests that need them skip and say so; the TLS tests need openssl)" >&2
fi
bun run typecheck
bun run build
bun test --timeout 120000 "$@"
