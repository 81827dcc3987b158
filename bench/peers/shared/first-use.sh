# What a peer's run.sh installs on first use, sourced from it (in its own folder):
#   need_command NAME CMD HINT        stop with HINT when CMD is missing
#   ensure_npm NAME MODULE WHAT       npm ci when node_modules/MODULE is missing or package-lock.json is newer
#   ensure_debian NAME CMD PACKAGE    apt-get install PACKAGE when CMD is missing (as root), else stop naming it
# NAME prefixes every message ("bullmq benchmark").

need_command() {
  if ! command -v "$2" >/dev/null 2>&1; then
    echo "$1: needs $3" >&2
    exit 1
  fi
}

ensure_npm() {
  if [[ ! -d node_modules/$2 || package-lock.json -nt node_modules/.package-lock.json ]]; then
    echo "$1: installing $3 (package-lock.json) with npm" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2
  fi
}

ensure_debian() {
  command -v "$2" >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "$1: installing $3 with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$3") >&2
  else
    echo "$1: needs $3 (Debian: apt-get install -y $3)" >&2
    exit 1
  fi
}
