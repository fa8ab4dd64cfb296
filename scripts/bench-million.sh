#!/usr/bin/env bash
# A million recipients: NDJSON upload rate, the peak memory (RSS) of the scheduler and each
# worker over the whole run, Redis memory per recipient where the bytes live (staged list,
# domain streams, recipient states, events, feed), and correct counts at completion.
# Two short vars per recipient; 50 domains; 2 workers, 1 scheduler, Redis AOF everysec.
#   scripts/bench-million.sh [RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 1 "$@"
N=${1:-1000000}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
source scripts/lib/stack.sh
trap stack_stop EXIT
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}

stack_start_redis --appendonly yes --appendfsync everysec
stack_start_sink
stack_write_config "$(bench_toml 500 2000)"
stack_start_scheduler
stack_start_workers 2

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
used() { rcli INFO memory | awk -F: '/^used_memory:/ { print $2 + 0 }'; }
# Bytes Redis reports for KEY (0 if absent).
usage() { local b; b=$(rcli MEMORY USAGE "$1" SAMPLES 0); echo "${b:-0}"; }

api POST /v1/campaigns -H 'content-type: application/json' \
  -d '{"id":"million","from":{"email":"news@shop.example"},"subject":"Hello {{name}}","text":"Hello {{name}} from {{city}}","html":"<p>Hello {{name}} from {{city}}</p>","start":false}' >/dev/null
awk -v n="$N" 'BEGIN { for (i = 0; i < n; i++) printf "{\"email\":\"u%d@d%d.example\",\"vars\":{\"name\":\"Reader %d\",\"city\":\"Lyon\"}}\n", i, i % 50, i }' \
  >"$STACK_DIR/recipients.ndjson"
before=$(used)
t0=$(date +%s.%N)
api POST /v1/campaigns/million/recipients --data-binary @"$STACK_DIR/recipients.ndjson" >"$STACK_DIR/upload.json"
t1=$(date +%s.%N)
staged_bytes=$(usage 'sluice:{c:million}:staged')
after_upload=$(used)
rm -f "$STACK_DIR/recipients.ndjson"

# Peak RSS (kB) of each Sluice process, sampled every 0.2 s while the campaign runs.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
declare -A PEAK
sample() {
  local i
  for i in "${!STACK_PIDS[@]}"; do
    case "${STACK_NAMES[$i]}" in scheduler-*|worker-*) ;; *) continue ;; esac
    local r; r=$(rss_kb "${STACK_PIDS[$i]}")
    if [ "${r:-0}" -gt "${PEAK[${STACK_NAMES[$i]}]:-0}" ]; then PEAK[${STACK_NAMES[$i]}]=$r; fi
  done
  return 0
}
t2=$(date +%s.%N)
api POST /v1/campaigns/million/start >/dev/null
stream_bytes=0; stream_jobs=0
deadline=$((SECONDS + 1200))
while :; do
  sample
  view=$(api GET /v1/campaigns/million)
  if [ "$(json_field "$view" status)" = completed ]; then break; fi
  if [ $SECONDS -gt $deadline ]; then echo "not completed within 20 minutes; logs in $STACK_DIR" >&2; exit 1; fi
  # Once, with a full window queued: what a job costs in the domain streams.
  if [ "$stream_jobs" -eq 0 ] && [ "$(json_field "$view" queued)" -ge 20000 ]; then
    for d in $(seq 0 49); do
      stream_bytes=$((stream_bytes + $(usage "sluice:{d:d$d.example}:q")))
      stream_jobs=$((stream_jobs + $(rcli XLEN "sluice:{d:d$d.example}:q")))
    done
  fi
  sleep 0.2
done
t3=$(completed_at "$view")
sleep 2
state_bytes=$(usage 'sluice:{c:million}:state')
events_bytes=$(usage 'sluice:{c:million}:events'); events_n=$(rcli XLEN 'sluice:{c:million}:events')
feed_bytes=0; feed_entries=0
for k in $(seq 0 7); do
  feed_bytes=$((feed_bytes + $(usage "sluice:{e:$k}:feed"))); feed_entries=$((feed_entries + $(rcli XLEN "sluice:{e:$k}:feed")))
done
accepted=$(json_field "$(cat "$STACK_DIR/upload.json")" accepted)

awk -v n="$N" -v acc="$accepted" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v t3="$t3" \
  -v sent="$(json_field "$view" sent)" -v total="$(json_field "$view" total)" \
  -v before="$before" -v up="$after_upload" -v staged="$staged_bytes" \
  -v sb="$stream_bytes" -v sj="$stream_jobs" -v st="$state_bytes" -v eb="$events_bytes" -v en="$events_n" \
  -v fb="$feed_bytes" -v fe="$feed_entries" 'BEGIN {
  printf "recipients                 %d accepted of %d (two vars each, 50 domains)\n", acc, n
  printf "NDJSON upload              %.2f s = %.0f recipients/s   (goal >= 100,000/s)\n", t1 - t0, n / (t1 - t0)
  printf "start -> completed         %.1f s = %.0f msg/s; sent %d of total %d\n", t3 - t2, sent / (t3 - t2), sent, total
  printf "Redis, staged (upload)     %.0f B per recipient (list entry; used_memory grew %.0f B each)\n", staged / n, (up - before) / n
  if (sj > 0) printf "Redis, queued job          %.0f B per job in the domain streams (%d jobs sampled, %.1f MB in all)\n", sb / sj, sj, sb / 1e6
  printf "Redis, recipient state     %.0f B per recipient (state hash, kept for retention)\n", st / n
  printf "Redis, events              %.0f B per event (%d in the campaign stream, capped by events_maxlen)\n", (en ? eb / en : 0), en
  printf "Redis, feed                %.0f B in %d entries (runs of up to 1,000 events)\n", fb, fe
}'
for name in "${!PEAK[@]}"; do
  awk -v n="$name" -v kb="${PEAK[$name]}" 'BEGIN { printf "peak RSS %-17s %.1f MB   (goal < 100 MB)\n", n, kb / 1024 }'
done | sort
