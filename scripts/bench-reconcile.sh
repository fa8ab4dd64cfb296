#!/usr/bin/env bash
# What the reconcile duty costs: a campaign of N recipients (default 200,000) over 50 domains
# is pushed into its destination streams with no worker running, so it stalls; the duty looks
# at it (nothing lost), then LOST (default 1,000) jobs are deleted from the streams and the
# duty looks again and puts them back. Prints each look's duration and what it repaired.
#   scripts/bench-reconcile.sh [RECIPIENTS] [LOST]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 2 "$@"
N=${1:-200000}
LOST=${2:-1000}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
count_arg LOST "$LOST" 0 "$N"
source scripts/lib/stack.sh
trap stack_stop EXIT

stack_start_redis --appendonly yes --appendfsync everysec
stack_start_sink
# Every job pushed at once (no expansion window), and a look after 2 s without movement.
stack_write_config "$(bench_toml 500 5000 | sed "s/^expand_window = .*/expand_window = $N/")"
SLUICE__CAMPAIGNS__RECONCILE_AFTER=2s stack_start_scheduler

api POST /v1/campaigns -H 'content-type: application/json' \
  -d '{"id":"stall","from":{"email":"news@shop.example"},"subject":"News for {{name}}","text":"Hello {{name}}","start":false}' >/dev/null
recipients_ndjson "$N" 50 >"$STACK_DIR/recipients.ndjson"
api POST /v1/campaigns/stall/recipients --data-binary @"$STACK_DIR/recipients.ndjson" >/dev/null
api POST /v1/campaigns/stall/start >/dev/null
queued() { [ "$(json_field "$(api GET /v1/campaigns/stall)" queued)" -ge "$N" ]; }
wait_until "every job pushed" 600 queued

log="$STACK_DIR/scheduler-1.log"
looked() { grep -q 'campaign stalled' "$log"; }
wait_until "the duty's first look" 600 looked
# Delete LOST jobs spread over the destinations, then wait for the look that puts them back.
for d in $(seq 0 49); do
  per=$(((LOST + 49 - d) / 50))
  [ "$per" -gt 0 ] || continue
  redis-cli -p "$REDIS_PORT" EVAL "for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', ARGV[1])) do
    redis.call('XDEL', KEYS[1], e[1]) end" 1 "sluice:{d:d$d.example}:q" "$per" >/dev/null
done
back() { grep -q 'lost jobs put back' "$log"; }
if [ "$LOST" -gt 0 ]; then wait_until "the look that puts the lost jobs back" 600 back; fi

requeued=$(curl -s "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" | awk '/^sluice_reconciled_jobs_total\{action="requeued"\}/ { print $2 }')
echo "recipients            $N over 50 domains, every job in a stream, no worker"
grep 'campaign stalled' "$log" | sed -n '1p; /lost jobs/p' | sed -E 's/.*(campaign stalled[^=]*).* elapsed_ms=([0-9]+).*/look: \2 ms  (\1)/'
echo "jobs deleted / put back  $LOST / ${requeued:-0}"
[ "${requeued:-0}" = "$LOST" ] || { echo "put back $requeued, expected $LOST; logs in $STACK_DIR" >&2; exit 1; }
