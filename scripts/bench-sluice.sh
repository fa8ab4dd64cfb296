#!/usr/bin/env bash
# Sluice end to end: a campaign of N recipients (default 50,000) over 50 domains, with a
# ~2 KB HTML+text message, API to SMTP sink on this machine, Redis with AOF (everysec) on.
# Prints messages/second from start to completion, CPU per process, Redis calls per message.
#   scripts/bench-sluice.sh [RECIPIENTS] [WORKERS]
#   DKIM=1 scripts/bench-sluice.sh ...   signs every message with an RSA-2048 key made for the run
#   SINK_PORT=P scripts/bench-sluice.sh  sends to an SMTP sink already listening on 127.0.0.1:P
#                                         (scripts/bench.sh uses Postfix's smtp-sink)
#   HISTORY=1 scripts/bench-sluice.sh    with [history] on a PostgreSQL of the run; also prints how
#                                         fast the events reached it (scripts/bench-history.sh)
#   HISTORY=late scripts/bench-sluice.sh PostgreSQL starts only once the campaign completed: the
#                                         writers' catch-up rate is their most events/s
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 2 "$@"
N=${1:-50000}
WORKERS=${2:-2}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
count_arg WORKERS "$WORKERS" 1 "$MAX_WORKERS"
source scripts/lib/stack.sh
trap stack_stop EXIT

stack_start_redis --appendonly yes --appendfsync everysec
if [ -n "${SINK_PORT:-}" ]; then stack_use_sink "$SINK_PORT"; else stack_start_sink; fi
dkim_keys=""
if [ "${DKIM:-0}" = 1 ]; then
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$STACK_DIR/dkim.pem" 2>/dev/null
  dkim_keys="[[dkim.keys]]
domain = \"shop.example\"
selector = \"bench\"
key_file = \"$STACK_DIR/dkim.pem\"
"
fi
history=""
case "${HISTORY:-0}" in
  0) ;;
  1) stack_start_postgres ;;
  late) PG_PORT=$(free_port); PG_URL="postgres://sluice@127.0.0.1:$PG_PORT/sluice" ;;
  *) echo "HISTORY must be 0, 1 or late" >&2; exit 2 ;;
esac
[ "${HISTORY:-0}" != 0 ] && history="[history]
url = \"$PG_URL\"
"
stack_write_config "$dkim_keys$history$(bench_toml 500 2000)"
stack_start_scheduler
stack_start_workers "$WORKERS"

paragraph='<p>Dear {{name}}, thank you for reading our spring newsletter. This paragraph is filler that brings the message to about two kilobytes, the size used in every figure in this repository.</p>'
html="<html><body><h1>Hello {{name}}</h1>$(for _ in $(seq 1 8); do printf '%s' "$paragraph"; done)</body></html>"
text="Hello {{name}}, this is the plain text part of the benchmark message."
api POST /v1/campaigns -H 'content-type: application/json' \
  -d "{\"id\":\"bench\",\"from\":{\"email\":\"news@shop.example\",\"name\":\"Bench\"},\"subject\":\"Spring news for {{name}}\",\"html\":\"$html\",\"text\":\"$text\",\"start\":false}" >/dev/null
recipients_ndjson "$N" 50 >"$STACK_DIR/recipients.ndjson"
t0=$(date +%s.%N)
api POST /v1/campaigns/bench/recipients --data-binary @"$STACK_DIR/recipients.ndjson" >/dev/null
t1=$(date +%s.%N)
api POST /v1/campaigns/bench/start >/dev/null
t2=$(campaign_wait bench)
if [ "${HISTORY:-0}" = late ]; then
  stack_start_postgres "$PG_PORT"
  fed() { local n=0 k; for k in 0 1 2 3 4 5 6 7; do n=$((n + $(redis-cli -p "$REDIS_PORT" GET "sluice:{e:$k}:seq" | sed 's/^$/0/'))); done; echo "$n"; }
  rows() { psql_sluice -c 'SELECT count(*) FROM events' 2>/dev/null || echo 0; }
  deadline=$((SECONDS + 600))
  until [ "$(rows)" -gt 0 ]; do [ $SECONDS -gt $deadline ] && exit 1; sleep 0.01; done
  ta=$(date +%s.%N); first=$(rows)
  until [ "$(rows)" -ge "$(fed)" ]; do [ $SECONDS -gt $deadline ] && exit 1; sleep 0.01; done
  tb=$(date +%s.%N)
  awk -v e="$(rows)" -v f="$first" -v ta="$ta" -v tb="$tb" 'BEGIN {
    printf "history catch-up      %d events written at %.0f events/s (PostgreSQL started after the send)\n", e - f, (e - f) / (tb - ta)
  }'
fi
if [ "${HISTORY:-0}" = 1 ]; then
  lag=$(curl -s "http://127.0.0.1:$SCHED_METRICS_PORT/metrics" | awk '/^sluice_history_lag_seconds/ { if ($2 > m) m = $2 } END { print m + 0 }')
  # Every event the feed got (its shards' sequence numbers) must reach PostgreSQL.
  fed() { local n=0 k; for k in 0 1 2 3 4 5 6 7; do n=$((n + $(redis-cli -p "$REDIS_PORT" GET "sluice:{e:$k}:seq" | sed 's/^$/0/'))); done; echo "$n"; }
  deadline=$((SECONDS + 600))
  until [ "$(psql_sluice -c 'SELECT count(*) FROM events')" -ge "$(fed)" ]; do
    [ $SECONDS -gt $deadline ] && { echo "history did not catch up within 10 minutes; logs in $STACK_DIR" >&2; exit 1; }
    sleep 0.05
  done
  t3=$(date +%s.%N)
  events=$(psql_sluice -c 'SELECT count(*) FROM events')
  awk -v e="$events" -v t1="$t1" -v t2="$t2" -v t3="$t3" -v lag="$lag" 'BEGIN {
    printf "history events        %d in PostgreSQL, %.0f events/s from start until all were written\n", e, e / (t3 - t1)
    printf "history lag           %.2f s at completion; all written %.2f s after it\n", lag, t3 - t2
  }'
fi
view=$(api GET /v1/campaigns/bench)
sent=$(json_field "$view" sent)
sleep 1.2
accepted=$(tail -n1 "$STACK_DIR/sink.log" 2>/dev/null | grep -o 'accepted=[0-9]*' | cut -d= -f2 || true)
accepted=${accepted:-n/a}
size=$(printf '%s' "$html$text" | wc -c)
awk -v n="$N" -v s="$sent" -v a="$accepted" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v w="$WORKERS" -v sz="$size" 'BEGIN {
  printf "recipients            %d over 50 domains, %d workers, 1 scheduler, Redis AOF everysec\n", n, w
  printf "template bytes        %d (html + text before rendering)\n", sz
  printf "upload (NDJSON)       %.2f s  (%.0f recipients/s)\n", t1 - t0, n / (t1 - t0)
  printf "start -> completed    %.2f s\n", t2 - t1
  printf "sent / sink accepted  %d / %s\n", s, a
  printf "end-to-end            %.0f msg/s\n", s / (t2 - t1)
}'
stack_cpu_report "$sent"
redis-cli -p "$REDIS_PORT" INFO commandstats | awk -F"[:=,]" -v m="$sent" '/^cmdstat_/ { printf "redis %-22s %8d calls  %6.3f per msg\n", substr($1, 9), $3, $3 / m }' | sort -k3 -nr | head -n 12
