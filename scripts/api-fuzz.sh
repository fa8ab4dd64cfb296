#!/usr/bin/env bash
# The admin API under generated input: schemathesis reads the scheduler's own OpenAPI document
# (GET /v1/openapi.json) and sends requests made from it, valid and invalid, to a scheduler
# on its own redis-server. It fails on any 5xx, any answer whose status, content type or body
# the document does not allow, and answers slower than 10 s (--max-response-time).
#   scripts/api-fuzz.sh [MAX_EXAMPLES] [MAX_SECONDS]     defaults: 20 examples an operation, 180 s
# Uses the binaries in STACK_BIN (default: the debug build scripts/test.sh makes); installs
# schemathesis from PyPI into a virtualenv under the target dir when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 2 "$@"
EXAMPLES=${1:-20}
MAX_SECONDS=${2:-180}
count_arg MAX_EXAMPLES "$EXAMPLES" 1 100000
count_arg MAX_SECONDS "$MAX_SECONDS" 1 86400
TOOLS="${CARGO_TARGET_DIR:-$PWD/target}/tools"
SCHEMATHESIS_VERSION=4.32.5

export STACK_BIN=${STACK_BIN:-${CARGO_TARGET_DIR:-target}/debug}
[ -x "$STACK_BIN/sluice-scheduler" ] || cargo build -p sluice-scheduler --quiet
source scripts/lib/stack.sh
trap stack_stop EXIT
ensure_debian_packages python3-venv
if [ ! -x "$TOOLS/schemathesis/bin/schemathesis" ]; then
  echo "== installing schemathesis $SCHEMATHESIS_VERSION (PyPI) into $TOOLS/schemathesis"
  python3 -m venv "$TOOLS/schemathesis"
  "$TOOLS/schemathesis/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi

stack_start_redis
SINK_PORT=$(free_port)   # no worker runs: nothing is ever sent
stack_write_config ""
stack_start_scheduler

echo "== schemathesis: $EXAMPLES examples an operation, at most ${MAX_SECONDS}s"
status=0
PYTHONPATH="$PWD/scripts/lib" SCHEMATHESIS_HOOKS=schemathesis_hooks \
  "$TOOLS/schemathesis/bin/schemathesis" run "http://127.0.0.1:$API_PORT/v1/openapi.json" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
  --max-examples "$EXAMPLES" --max-time "$MAX_SECONDS" --max-response-time 10 --request-timeout 15 \
  --seed 1 --workers 2 --no-color --suppress-health-check all || status=$?
if [ "$status" -ne 0 ]; then
  echo "== schemathesis failed; the scheduler's log:"
  tail -50 "$STACK_DIR/scheduler-1.log"
fi
exit "$status"
