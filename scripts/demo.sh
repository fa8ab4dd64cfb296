#!/usr/bin/env bash
# The main job, on one machine: a local Redis, a local SMTP sink, a local PostgreSQL for the
# history, the scheduler and two workers; a 10,000-recipient campaign over 20 domains with live
# progress; then the counts, one recipient's timeline and the campaign's report from the
# history, and where to look. Everything it starts is stopped when it ends (or on ctrl-c).
#   scripts/demo.sh   (no arguments)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 0 "$@"
source scripts/lib/stack.sh
trap stack_stop EXIT

stack_start_redis --appendonly yes --appendfsync everysec
stack_start_sink
stack_start_postgres
# A DKIM key for the demo From domain, made for this run: every demo message is signed.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$STACK_DIR/dkim.pem" 2>/dev/null
stack_write_config "
[[dkim.keys]]
domain = \"shop.example\"
selector = \"demo\"
key_file = \"$STACK_DIR/dkim.pem\"
"'
[limits.default]
rate = "2000/s"
burst = 500

[limits.domains."d0.example"]
rate = "300/s"

[retry]
schedule = ["2s", "5s"]

[history]
url = "'"$PG_URL"'"
'
stack_start_scheduler
stack_start_workers 2
echo "== Redis 127.0.0.1:$REDIS_PORT  SMTP sink 127.0.0.1:$SINK_PORT  PostgreSQL $PG_URL  API http://127.0.0.1:$API_PORT"

# A draft, its recipients as NDJSON (a few scripted to soft-fail twice or hard-bounce), start.
api POST /v1/campaigns -H 'content-type: application/json' -d '{
  "id": "demo",
  "name": "Spring demo",
  "from": {"email": "news@shop.example", "name": "Sluice Demo"},
  "subject": "Hello {{name}}, spring is here",
  "html": "<h1>Hello {{name}}</h1><p>This is the Sluice demo campaign.</p>",
  "text": "Hello {{name}}, this is the Sluice demo campaign.",
  "start": false
}' >/dev/null
{
  recipients_ndjson 9900 20
  for i in $(seq 1 50); do echo "{\"email\":\"soft2-$i@d$((i % 20)).example\",\"vars\":{\"name\":\"Retry $i\"}}"; done
  for i in $(seq 1 50); do echo "{\"email\":\"hard-$i@d$((i % 20)).example\",\"vars\":{\"name\":\"Bounce $i\"}}"; done
} >"$STACK_DIR/recipients.ndjson"
echo "== uploaded: $(api POST /v1/campaigns/demo/recipients --data-binary @"$STACK_DIR/recipients.ndjson")"
api POST /v1/campaigns/demo/start >/dev/null
start=$SECONDS

while :; do
  view=$(api GET /v1/campaigns/demo)
  status=$(json_field "$view" status)
  printf '\r   %-9s total %s  sent %s  queued %s  deferred %s  bounced %s  failed %s  (%ds)   ' \
    "$status" "$(json_field "$view" total)" "$(json_field "$view" sent)" "$(json_field "$view" queued)" \
    "$(json_field "$view" deferred)" "$(json_field "$view" bounced)" "$(json_field "$view" failed)" $((SECONDS - start))
  [ "$status" = completed ] && break
  [ $((SECONDS - start)) -gt 300 ] && { echo; echo "demo did not finish in 5 minutes; logs in $STACK_DIR" >&2; exit 1; }
  sleep 1
done
echo
echo "== final: $(api GET /v1/campaigns/demo)"
sleep 1.2 # the sink prints its totals every second
echo "== the SMTP sink accepted: $(tail -n1 "$STACK_DIR/sink.log" 2>/dev/null)"
echo "== metrics (while running): http://127.0.0.1:$SCHED_METRICS_PORT/metrics ${WORKER_METRICS[*]}"
curl -s "${WORKER_METRICS[0]}" | grep -E '^sluice_messages_total' | head -n 8 || true
echo "== events of the campaign: redis-cli -p $REDIS_PORT XRANGE 'sluice:{c:demo}:events' - + COUNT 5"
redis-cli -p "$REDIS_PORT" XRANGE 'sluice:{c:demo}:events' - + COUNT 2
# The history: every event also lands in PostgreSQL (docs/history.md).
fed() { local n=0 k; for k in 0 1 2 3 4 5 6 7; do n=$((n + $(redis-cli -p "$REDIS_PORT" GET "sluice:{e:$k}:seq" | sed 's/^$/0/'))); done; echo "$n"; }
wait_until "the history to hold every event" 60 bash -c "[ \"\$(\"$PG_BIN/psql\" -X -At -h 127.0.0.1 -p $PG_PORT -U sluice -d sluice -c 'SELECT count(*) FROM events')\" -ge $(fed) ]"
echo "== one recipient's timeline, from the history: GET /v1/recipients/soft2-1@d1.example/timeline"
api GET /v1/recipients/soft2-1@d1.example/timeline
echo
echo "== the campaign's report, from the history: GET /v1/campaigns/demo/report"
api GET /v1/campaigns/demo/report
echo
echo "== logs: $STACK_DIR (everything started here is stopped now)"
