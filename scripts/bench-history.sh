#!/usr/bin/env bash
# The history store (docs/history.md), measured:
#  1. scripts/bench-sluice.sh without and with [history], in the same round: msg/s of each,
#     and how fast the events reached PostgreSQL; then once more with PostgreSQL started only
#     after the send, so the writers' catch-up shows the most events/s they write;
#  2. EVENTS events loaded into the history (5 campaigns to EVENTS/10 recipients, a queued
#     and a sent event each, over 30 days, inserted in time order as the writers do), then PostgreSQL bytes per event (indexes
#     included) and the p50/p99 of the API's timeline (500 random addresses) and campaign
#     report (5 campaigns) calls.
#   scripts/bench-history.sh [RECIPIENTS] [EVENTS] [ROUNDS]   (defaults 50,000, 10,000,000, 3;
#   the sending figures are medians over the rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 3 "$@"
usage() { echo "usage: scripts/bench-history.sh [RECIPIENTS (1000-10000000)] [EVENTS (10-100000000, a multiple of 10)] [ROUNDS (1-9)]" >&2; exit 2; }
N=${1:-50000}
EVENTS=${2:-10000000}
ROUNDS=${3:-3}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
count_arg EVENTS "$EVENTS" 1 100000000
count_arg ROUNDS "$ROUNDS" 1 20
[[ "$ROUNDS" =~ ^[1-9]$ ]] || usage
[[ "$N" =~ ^[0-9]+$ ]] && [ "$N" -ge 1000 ] && [ "$N" -le 10000000 ] || usage
[[ "$EVENTS" =~ ^[0-9]+$ ]] && [ "$EVENTS" -ge 10 ] && [ "$EVENTS" -le 100000000 ] && [ $((EVENTS % 10)) -eq 0 ] || usage

echo "== 1. scripts/bench-sluice.sh $N without and with [history], $ROUNDS rounds"
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
without_all=(); with_all=(); written_all=(); catchup_all=(); pg_cpu_all=(); sched_cpu_all=()
for round in $(seq 1 "$ROUNDS"); do
  echo "-- round $round"
  # The runs alternate which goes first: on a shared VM the first of a round is often faster.
  for mode in $([ $((round % 2)) -eq 1 ] && echo "0 1" || echo "1 0"); do
    out=$(HISTORY=$mode bash scripts/bench-sluice.sh "$N"); printf '%s\n' "$out"
    if [ "$mode" = 0 ]; then
      without_all+=("$(awk '/^end-to-end/ { print $2 }' <<<"$out")")
    else
      with_all+=("$(awk '/^end-to-end/ { print $2 }' <<<"$out")")
      written_all+=("$(awk '/^history events/ { print $6 }' <<<"$out")")
      pg_cpu_all+=("$(awk '/^cpu postgres/ { print $4 }' <<<"$out")")
      sched_cpu_all+=("$(awk '/^cpu scheduler-1/ { print $4 }' <<<"$out")")
    fi
  done
  out=$(HISTORY=late bash scripts/bench-sluice.sh "$N"); printf '%s\n' "$out"
  catchup_all+=("$(awk '/^history catch-up/ { print $7 }' <<<"$out")")
done
without=$(printf '%s\n' "${without_all[@]}" | median)
with=$(printf '%s\n' "${with_all[@]}" | median)
written=$(printf '%s\n' "${written_all[@]}" | median)
catchup=$(printf '%s\n' "${catchup_all[@]}" | median)
pg_cpu=$(printf '%s\n' "${pg_cpu_all[@]}" | median)
sched_cpu=$(printf '%s\n' "${sched_cpu_all[@]}" | median)

echo "== 2. $EVENTS events in the history"
source scripts/lib/stack.sh
trap stack_stop EXIT
stack_start_redis
stack_start_sink
stack_start_postgres
stack_write_config "[history]
url = \"$PG_URL\""
stack_start_scheduler
wait_until "the history schema" 30 psql_sluice -c "SELECT 1 FROM sluice_migrations"
R=$((EVENTS / 10))
psql_sluice >/dev/null <<SQL
SET TimeZone = 'UTC';
DO \$\$ DECLARE d date; BEGIN
  FOR d IN SELECT generate_series(current_date - 29, current_date, '1 day')::date LOOP
    EXECUTE format('CREATE TABLE IF NOT EXISTS events_p%s PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                   to_char(d, 'YYYYMMDD'), d::timestamptz, (d + 1)::timestamptz);
  END LOOP;
END \$\$;
INSERT INTO sources (name, kind, created_at, summary)
  SELECT 'campaign-' || c, 'campaign', now(), '{"subject": "Bench", "tags": ["bench"]}' FROM generate_series(0, 4) c;
SQL
t0=$(date +%s.%N)
for c in 0 1 2 3 4; do
  psql_sluice -c "SET TimeZone = 'UTC';
    INSERT INTO events (at, source, seq, type, recipient, data)
    SELECT (current_date - 29 + $((c * 6)))::timestamptz + i * interval '3 ms' + k * interval '1 s', 'campaign-$c', k,
           CASE k WHEN 0 THEN 'queued' ELSE 'sent' END, 'u' || i || '@d' || (i % 50) || '.example',
           CASE k WHEN 1 THEN ('{\"code\":250,\"enhanced\":\"2.0.0\",\"text\":\"Ok: queued as ' || to_hex(i) || '\"}')::json END
    FROM generate_series(0, $((R - 1))) i, generate_series(0, 1) k ORDER BY 1" >/dev/null
  echo "   campaign-$c: $((2 * R)) events"
done
psql_sluice -c "VACUUM ANALYZE events" >/dev/null
t1=$(date +%s.%N)
bytes=$(psql_sluice -c "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = 'events'::regclass")
rows=$(psql_sluice -c "SELECT count(*) FROM events")

# p50 and p99 (seconds) of the numbers on stdin.
percentiles() {
  sort -n | awk 'function at(q) { i = NR * q; return v[(i == int(i)) ? i : int(i) + 1] * 1000 }
    { v[NR] = $1 } END { printf "%.1f ms p50, %.1f ms p99 (%d calls)", at(0.5), at(0.99), NR }'
}
timed() { curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT$1"; }
for _ in $(seq 1 500); do
  i=$(( (RANDOM * 32768 + RANDOM) % R ))
  timed "/v1/recipients/u$i@d$((i % 50)).example/timeline"
done >"$STACK_DIR/timeline.times"
for c in 0 1 2 3 4; do timed "/v1/campaigns/campaign-$c/report"; done >"$STACK_DIR/report.times"
events_per_call=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT/v1/recipients/u7@d7.example/timeline" | grep -o '"type"' | wc -l)

echo "== history figures"
awk -v a="$without" -v b="$with" -v w="$written" -v c="$catchup" -v pg="$pg_cpu" -v sc="$sched_cpu" -v rows="$rows" -v bytes="$bytes" -v t="$(awk -v t0="$t0" -v t1="$t1" 'BEGIN { print t1 - t0 }')" 'BEGIN {
  printf "sending without / with [history]   %s / %s msg/s, medians  (%.1f%% lost; goal <= 5%%)\n", a, b, (a - b) / a * 100
  printf "written to PostgreSQL              %s events/s while sending (all there is: 2 per message)\n", w
  printf "CPU with [history]                 PostgreSQL %s us/msg, scheduler (writers included) %s us/msg\n", pg, sc
  printf "writers at most (catch-up)         %s events/s = %.1f per message at %s msg/s (goal >= 3)\n", c, c / a, a
  printf "loaded                             %d events in %.0f s (SQL)\n", rows, t
  printf "PostgreSQL bytes per event         %.0f (indexes included; goal <= 200)\n", bytes / rows
}'
printf 'timeline (%s events per address)    %s (goal p99 <= 50 ms)\n' "$events_per_call" "$(percentiles <"$STACK_DIR/timeline.times")"
printf 'campaign report (%d events each)   %s\n' "$((2 * R))" "$(percentiles <"$STACK_DIR/report.times")"
