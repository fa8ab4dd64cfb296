#!/usr/bin/env bash
# Chaos run: a campaign (default 50,000 recipients over 50 domains) through 3 workers and 2
# schedulers on a local Redis with AOF (appendfsync everysec), while this script
#   - kills -9 a random worker every few seconds and starts a new one,
#   - kills -9 one scheduler,
#   - restarts Redis once (kill -9, then start again from its AOF),
#   - makes the SMTP relay refuse connections for 10 s,
#   - drops every Redis client connection once (CLIENT KILL).
# Then it prints what was delivered, duplicates (also against what was in flight at each
# kill), entries left pending, and whether the counts are consistent. It exits non-zero on
# any loss or inconsistency.
#   scripts/chaos.sh [RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 1 "$@"
N=${1:-50000}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
DOMAINS=50
source scripts/lib/stack.sh
trap stack_stop EXIT

stack_start_redis --appendonly yes --appendfsync everysec
REDIS_PID=${STACK_PIDS[-1]}
stack_start_sink --refuse-file "$STACK_DIR/relay-down" --dump "$STACK_DIR/delivered.txt"
SINK_PID=${STACK_PIDS[-1]}
stack_write_config '
[limits.default]
rate = "20/s"
burst = 20
connections = 8

[worker]
batch = 50
max_inflight = 400
reclaim_idle = "3s"

[scheduler]
reclaim_idle = "3s"

[retry]
schedule = ["2s"]
'
stack_start_scheduler scheduler-1
stack_start_scheduler scheduler-2
WORKERS=()
NAMES=()
for i in 1 2 3; do stack_start_worker "worker-$i"; WORKERS+=("$LAST_PID"); NAMES+=("worker-$i"); done

api POST /v1/campaigns -H 'content-type: application/json' \
  -d '{"id":"chaos","from":{"email":"news@shop.example"},"subject":"Hi {{name}}","text":"Hello {{name}}","start":false}' >/dev/null
recipients_ndjson "$N" "$DOMAINS" | api POST /v1/campaigns/chaos/recipients --data-binary @- >/dev/null
API2=${SCHEDULER_APIS[1]}
api POST /v1/campaigns/chaos/start >/dev/null
echo "== chaos on $N recipients over $DOMAINS domains at 20/s each; logs in $STACK_DIR"

# kill9 PID : kill -9 and reap quietly.
kill9() { kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Jobs handed out and not yet acked, over every domain stream.
in_flight() {
  local d total=0 n
  for d in $(seq 0 $((DOMAINS - 1))); do
    n=$(redis-cli -p "$REDIS_PORT" XPENDING "sluice:{d:d$d.example}:q" workers 2>/dev/null | head -n1)
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
# pending_of CONSUMER : jobs a consumer still holds, over every domain stream.
pending_of() {
  local d total=0 n
  for d in $(seq 0 $((DOMAINS - 1))); do
    n=$(redis-cli -p "$REDIS_PORT" XPENDING "sluice:{d:d$d.example}:q" workers - + 100000 "$1" 2>/dev/null | grep -c . || true)
    total=$((total + n / 4))
  done
  echo "$total"
}
view() { curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API2/v1/campaigns/chaos"; }
sent() { json_field "$(view)" sent; }

kills=0 held=0 step=0 worker_seq=3
events=()
start=$SECONDS
while [ "$(json_field "$(view)" status)" != completed ]; do
  [ $((SECONDS - start)) -gt 900 ] && { echo "not completed after 15 minutes" >&2; exit 1; }
  sleep 3
  step=$((step + 1))
  case $step in
    2) kill9 "${SCHEDULER_PIDS[0]}"; events+=("t=$((SECONDS - start))s kill -9 scheduler-1") ;;
    4) redis-cli -p "$REDIS_PORT" CLIENT KILL TYPE normal >/dev/null; events+=("t=$((SECONDS - start))s CLIENT KILL TYPE normal") ;;
    6) kill9 "$REDIS_PID"
       redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STACK_DIR" --save "" --appendonly yes --appendfsync everysec >>"$STACK_DIR/redis.log" 2>&1 &
       REDIS_PID=$!; STACK_PIDS+=($!); STACK_NAMES+=(redis-server)
       wait_until "redis-server after restart" 30 redis-cli -p "$REDIS_PORT" ping
       events+=("t=$((SECONDS - start))s Redis kill -9 and restart from AOF") ;;
    8) touch "$STACK_DIR/relay-down"; events+=("t=$((SECONDS - start))s relay refuses connections for 10 s")
       (sleep 10; rm -f "$STACK_DIR/relay-down") & ;;
  esac
  if [ $((step % 2)) -eq 1 ] && [ $kills -lt 6 ]; then
    # A random worker, preferring one that holds jobs right now (a kill that matters).
    victim=$((RANDOM % ${#WORKERS[@]}))
    for i in "${!NAMES[@]}"; do [ "$(pending_of "${NAMES[$i]}")" -gt 0 ] && { victim=$i; break; }; done
    now_held=$(in_flight)
    kill9 "${WORKERS[$victim]}"
    dead=${NAMES[$victim]}
    worker_seq=$((worker_seq + 1))
    stack_start_worker "worker-$worker_seq"
    WORKERS[$victim]=$LAST_PID; NAMES[$victim]="worker-$worker_seq"
    kills=$((kills + 1)); held=$((held + now_held))
    events+=("t=$((SECONDS - start))s kill -9 $dead ($now_held jobs in flight), started worker-$worker_seq")
    if [ -z "${reclaim_s:-}" ] && [ "$(pending_of "$dead")" -gt 0 ]; then
      t0=$(date +%s.%N)
      while [ "$(pending_of "$dead")" -gt 0 ]; do sleep 0.2; done
      reclaim_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
      events+=("      its jobs were all taken over within ${reclaim_s}s (worker.reclaim_idle = 3s)")
    fi
  fi
done
elapsed=$((SECONDS - start))
printf '   %s\n' "${events[@]}"

final=$(view)
pending=$(in_flight)
kill -TERM "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true
delivered=$(wc -l <"$STACK_DIR/delivered.txt")
dups=$(awk '$2 > 1 { d += $2 - 1 } END { print d + 0 }' "$STACK_DIR/delivered.txt")
total=$(json_field "$final" total); sentc=$(json_field "$final" sent)
bounced=$(json_field "$final" bounced); failed=$(json_field "$final" failed); suppressed=$(json_field "$final" suppressed)
echo "== result after ${elapsed}s"
echo "recipients delivered at least once   $delivered of $N"
echo "duplicates                           $dups (jobs in flight at the $kills worker kills: $held; $(awk -v d="$dups" -v k="$kills" 'BEGIN { printf "%.1f", d / k }') per kill)"
echo "time to reclaim a killed worker's jobs ${reclaim_s:-n/a} s"
echo "entries left pending                 $pending"
echo "counts                               total $total = sent $sentc + bounced $bounced + failed $failed + suppressed $suppressed"
ok=1
[ "$delivered" -eq "$N" ] || { echo "LOSS: $((N - delivered)) recipients never delivered"; ok=0; }
[ "$pending" -eq 0 ] || { echo "INCONSISTENT: entries left pending"; ok=0; }
[ "$total" -eq $((sentc + bounced + failed + suppressed)) ] || { echo "INCONSISTENT: counts do not add up"; ok=0; }
[ "$sentc" -le "$((delivered + dups))" ] || { echo "INCONSISTENT: more sent than the relay accepted"; ok=0; }
[ $ok -eq 1 ] && echo "== chaos passed" || { echo "== chaos FAILED"; exit 1; }
