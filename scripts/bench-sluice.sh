#!/usr/bin/env bash
# Sluice end to end: a campaign of N recipients (default 50,000) over 50 domains, with a
# ~2 KB HTML+text message, API to SMTP sink on this machine, Redis with AOF (everysec) on.
# Prints messages/second from start to completion, CPU per process, Redis calls per message.
#   scripts/bench-sluice.sh [RECIPIENTS] [WORKERS]
#   DKIM=1 scripts/bench-sluice.sh ...   signs every message with an RSA-2048 key made for the run
#   SINK_PORT=P scripts/bench-sluice.sh  sends to an SMTP sink already listening on 127.0.0.1:P
#                                         (scripts/bench.sh uses Postfix's smtp-sink)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50000}
WORKERS=${2:-2}
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
stack_write_config "$dkim_keys$(bench_toml 500 2000)"
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
deadline=$((SECONDS + 600))
until [ "$(json_field "$(api GET /v1/campaigns/bench)" status)" = completed ]; do
  [ $SECONDS -gt $deadline ] && { echo "bench did not complete within 10 minutes; logs in $STACK_DIR" >&2; exit 1; }
  sleep 0.05
done
t2=$(date +%s.%N)
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
