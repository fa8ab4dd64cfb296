#!/usr/bin/env bash
# A master's death under a campaign, on either deployment with replicas (AOF everysec):
#   cluster   three masters with one replica each; the master serving the campaign's keys dies
#   sentinel  one master, one replica, three sentinels (quorum 2, master down after 1 s)
# A campaign (default 60,000 recipients over 50 domains) runs through two workers and one
# scheduler. Once a third is sent, the master is killed with -9 and its replica takes over.
# Prints how long no master served the campaign, the jobs in flight at the kill, the campaign's
# counts, and what the sink received (unique, duplicates, missing). Exits non-zero unless the
# campaign completes with every recipient counted once and delivered.
#   scripts/chaos-failover.sh cluster|sentinel [RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 2 "$@"
[ $# -ge 1 ] || usage_error "name the deployment: cluster or sentinel"
DEPLOYMENT=$1
choice_arg DEPLOYMENT "$DEPLOYMENT" cluster sentinel
N=${2:-60000}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
DOMAINS=50
source scripts/lib/stack.sh
trap stack_stop EXIT

if [ "$DEPLOYMENT" = cluster ]; then
  CLUSTER_REPLICAS=1 stack_start_cluster --appendonly yes --appendfsync everysec
else
  stack_start_sentinel --appendonly yes --appendfsync everysec
fi
stack_start_sink --dump "$STACK_DIR/delivered.txt"
SINK_PID=${STACK_PIDS[-1]}
stack_write_config "$(bench_toml 200 2000)"
stack_start_scheduler
stack_start_workers 2

# master_now [ASK_PORT] : the port serving the campaign's keys now, as the cluster (asked on
# ASK_PORT) or the sentinels see it.
master_now() {
  if [ "$DEPLOYMENT" = cluster ]; then cluster_master_of '{c:failover}' "${1:-$REDIS_PORT}"; else sentinel_master; fi
}
# in_flight PORT : jobs handed to workers and not yet acked, over every domain stream (one
# redis-cli for all of them: the count is taken at the kill, not seconds before it).
in_flight() {
  local d
  for d in $(seq 0 $((DOMAINS - 1))); do echo "XINFO GROUPS sluice:{d:d$d.example}:q"; done |
    redis-cli -c -p "$1" 2>/dev/null | awk 'prev == "pending" { n += $1 } { prev = $1 } END { print n + 0 }'
}

api POST /v1/campaigns -H 'content-type: application/json' \
  -d '{"id":"failover","from":{"email":"news@shop.example"},"subject":"Hello {{name}}","text":"Hello {{name}}","start":false}' >/dev/null
recipients_ndjson "$N" "$DOMAINS" >"$STACK_DIR/recipients.ndjson"
api POST /v1/campaigns/failover/recipients --data-binary @"$STACK_DIR/recipients.ndjson" >/dev/null
victim=$(master_now)
survivor=$(for p in "${REDIS_NODES[@]}"; do [ "$p" != "$victim" ] && echo "$p"; done | head -n1)
api POST /v1/campaigns/failover/start >/dev/null
started=$(date +%s.%N)
sent_now() { json_field "$(api GET /v1/campaigns/failover --max-time 2 2>/dev/null || true)" sent; }
deadline=$((SECONDS + 120))
until [ "$(sent_now)" -gt $((N / 3)) ] 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "a third was not sent within 120 s (logs in $STACK_DIR)" >&2; exit 1; }
  sleep 0.05
done
before=$(sent_now)
held=$(in_flight "$victim")
echo "== $DEPLOYMENT: kill -9 the master serving the campaign (port $victim) at sent=$before, $held jobs in flight, \
$(awk -v n="$before" -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f msg/s so far", n / (b - a) }')"
kill -9 "${NODE_PIDS[$victim]}"
t0=$(date +%s.%N)
deadline=$((SECONDS + 60))
until master=$(master_now "$survivor") && [ -n "$master" ] && [ "$master" != "$victim" ]; do
  [ $SECONDS -lt $deadline ] || { echo "no replica took over within 60 s (logs in $STACK_DIR)" >&2; exit 1; }
  sleep 0.1
done
t1=$(date +%s.%N)
deadline=$((SECONDS + 120))
view=""
while [ $SECONDS -lt $deadline ]; do
  view=$(api GET /v1/campaigns/failover --max-time 2 2>/dev/null || true)
  [ "$(json_field "$view" status)" = completed ] && break
  sleep 0.2
done
t2=$(date +%s.%N)
echo "== port $master serves the campaign now"
sleep 1.5
kill -TERM "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
unique=$(wc -l <"$STACK_DIR/delivered.txt")
total=$(awk '{ n += $2 } END { print n + 0 }' "$STACK_DIR/delivered.txt")
status=$(json_field "$view" status); sent=$(json_field "$view" sent); queued=$(json_field "$view" queued)
awk -v f="$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" -v c="$(awk -v a="$t0" -v b="$t2" 'BEGIN { print b - a }')" \
  'BEGIN { printf "no master             %.1f s (kill to a new master)\nkill to completion    %.1f s\n", f, c }'
echo "campaign              status=$status sent=$sent queued=$queued (of $N)"
echo "sink                  $total delivered, $unique unique, $((total - unique)) duplicates (jobs in flight at the kill: $held), $((N - unique)) missing"
if [ "$status" = completed ] && [ "$sent" = "$N" ] && [ "$unique" = "$N" ]; then
  echo "OK: completed, every recipient counted once and delivered at least once"
else
  echo "FAILED: not every recipient counted once and delivered (docs/operations.md: Failover under a campaign; logs in $STACK_DIR)" >&2
  exit 1
fi
