# Argument checks shared by the scripts. A bad argument is refused before anything starts,
# with what is wrong, the script's usage (its header's "#   scripts/NAME ..." lines) and exit
# status 2; -h or --help prints the usage and exits 0. A count that is not a number once made
# a recipient generator loop until the disk was full.

# usage_lines : the usage lines of the running script's header.
usage_lines() {
  grep -E '^#   (scripts/|[A-Z_]+=[^ ]* scripts/)' "$0" | sed 's/^# */  /' || true
}

# usage_error MESSAGE : refuses the invocation.
usage_error() {
  echo "$(basename "$0"): $1" >&2
  echo "usage:" >&2
  usage_lines >&2
  exit 2
}

# args_check MAX "$@" : answers -h/--help; refuses more than MAX arguments.
args_check() {
  local max=$1
  shift
  case "${1:-}" in
    -h | --help) echo "usage:"; usage_lines; exit 0 ;;
  esac
  [ $# -le "$max" ] || usage_error "takes at most $max argument(s), got $#: $*"
}

# count_arg NAME VALUE MIN MAX : VALUE is a whole number from MIN to MAX.
count_arg() {
  local name=$1 value=$2 min=$3 max=$4
  [[ $value =~ ^[0-9]{1,10}$ ]] || usage_error "$name must be a whole number, not \"$value\""
  ((10#$value >= min && 10#$value <= max)) || usage_error "$name must be from $min to $max, not $value"
}

# choice_arg NAME VALUE CHOICE... : VALUE is one of the choices.
choice_arg() {
  local name=$1 value=$2 choice
  shift 2
  for choice in "$@"; do [ "$value" = "$choice" ] && return 0; done
  usage_error "$name must be one of: $*; not \"$value\""
}

# The bounds every script shares: recipients, messages and workers a run may ask for.
MAX_RECIPIENTS=10000000
MAX_WORKERS=64
