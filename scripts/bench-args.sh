# The bench wrappers' arguments, sourced with the wrapper's "$@": --build sets
# BUILD=1 (scripts/ensure-built.sh then rebuilds dist/), -h/--help prints the
# wrapper's usage() when it has one (else it goes on to the bench, which has its
# own --help), and everything else is collected in ARGS for the bench.
BUILD=0
ARGS=()
for arg in "$@"; do
  case "$arg" in
    -h|--help)
      if declare -F usage >/dev/null; then usage; exit 0; fi
      ARGS+=("$arg") ;;
    --build) BUILD=1 ;;
    *) ARGS+=("$arg") ;;
  esac
done
