#!/usr/bin/env bash
# SMTP submission in one round on this machine, the same 2 KB message throughout, Redis with
# AOF everysec, one scheduler and two workers:
#   (1) accepted msg/s: smtp-source from a trusted network into port 587, 8 then 32 sessions
#       (from the first MAIL to the last 250), and submit-to-delivered msg/s (to the last
#       message at Postfix's smtp-sink)
#   (2) a stock Postfix relay taking the same load (smtp-source, 32 sessions, into smtp-sink)
#   (3) latency under bulk: 2,000 messages at 100/s over SMTP while a 200,000-recipient
#       campaign drains; each carries its send time (X-Bench-Sent, µs) and the sink records
#       submit-to-250-at-the-sink, p50/p99
# Prints each figure and the goals: accepted >= 5,000 msg/s, delivered >= 5x the Postfix relay,
# p99 <= 150 ms under bulk.
#   scripts/bench-submission.sh [MESSAGES] [LATENCY_MESSAGES] [BULK_RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 3 "$@"
N=${1:-20000}
LATENCY_N=${2:-2000}
BULK=${3:-200000}
count_arg MESSAGES "$N" 1 1000000
count_arg LATENCY_MESSAGES "$LATENCY_N" 1 1000000
count_arg BULK_RECIPIENTS "$BULK" 1 "$MAX_RECIPIENTS"
source scripts/lib/stack.sh
source scripts/lib/postfix.sh
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}
postfix_bench_setup
wait_sink() {
  local deadline=$((SECONDS + 600))
  until [ "$(sink_count)" -ge "$1" ]; do
    if [ $SECONDS -gt $deadline ]; then echo "the sink never got $1 messages (logs in $STACK_DIR)" >&2; exit 1; fi
    sleep 0.05
  done
}

# The message: 2 KB, a From in a domain Sluice may send for, no Message-ID (each is new); LF
# line endings, which smtp-source sends as CRLF.
MESSAGE="$STACK_DIR/message.eml"
{
  printf 'From: Shop <orders@shop.example>\nTo: reader@d0.example\nSubject: Your order\n'
  printf 'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n'
  for _ in $(seq 1 28); do printf 'Thank you for your order; it ships tomorrow from our warehouse.\n'; done
} >"$MESSAGE"

submission_toml() {
  cat <<TOML
$(bench_toml 200 1000)

[submission]
listen = "127.0.0.1:$SUB_PORT"
trusted_networks = ["127.0.0.0/8"]
TOML
}

stack_start_redis --appendonly yes --appendfsync everysec
SUB_PORT=$(free_port)
stack_write_config "$(submission_toml)"
stack_start_scheduler
stack_start_workers 2

# submit SESSIONS COUNT : prints "accepted/s delivered/s".
submit() {
  local target t0 t1 t2
  target=$(($(sink_count) + $2))
  t0=$(date +%s.%N)
  smtp-source -s "$1" -m "$2" -F "$MESSAGE" -f orders@shop.example -t reader@d0.example "127.0.0.1:$SUB_PORT"
  t1=$(date +%s.%N)
  wait_sink "$target"
  t2=$(date +%s.%N)
  awk -v n="$2" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf "%.0f %.0f\n", n / (b - a), n / (c - a) }'
}
echo "== (1) smtp-source -> Sluice submission, 8 sessions"
read -r accepted8 delivered8 < <(submit 8 "$N")
echo "== (1) smtp-source -> Sluice submission, 32 sessions"
read -r accepted32 delivered32 < <(submit 32 "$N")
stack_cpu_report $((2 * N)) >"$STACK_DIR/cpu.txt"

echo "== (2) smtp-source -> Postfix relay -> smtp-sink, 32 sessions"
postfix_start_relay "$SINK_PORT"
target=$(($(sink_count) + N))
t0=$(date +%s.%N)
smtp-source -s 32 -m "$N" -F "$MESSAGE" -f orders@shop.example -t reader@d0.example "127.0.0.1:$PF_PORT"
wait_sink "$target"
t1=$(date +%s.%N)
postfix=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
postfix_stop_relay

echo "== (3) $LATENCY_N messages at 100/s over SMTP while a $BULK-recipient campaign drains"
stack_stop
rm -rf "$STACK_DIR/appendonlydir" "$STACK_DIR/dump.rdb"
STACK_PIDS=()
STACK_NAMES=()
stack_start_redis --appendonly yes --appendfsync everysec
stack_start_sink --latency-header X-Bench-Sent --latency-out "$STACK_DIR/latency.txt"
SUB_PORT=$(free_port)
stack_write_config "$(submission_toml)"
stack_start_scheduler
stack_start_workers 2
bulk_campaign_start "$BULK"
python3 - "$SUB_PORT" "$LATENCY_N" <<'PY'
import smtplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = smtplib.SMTP("127.0.0.1", port, timeout=30)
s.ehlo("bench.example")
start = time.monotonic()
for i in range(n):
    delay = start + i / 100 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    sent = time.time_ns() // 1000
    message = (f"From: account@shop.example\r\nTo: tx{i}@d{i % 50}.example\r\nSubject: Your code\r\n"
               f"X-Bench-Sent: {sent}\r\n\r\nCode {i}\r\n")
    s.sendmail("account@shop.example", [f"tx{i}@d{i % 50}.example"], message)
s.quit()
PY
sent_during=$(json_field "$(api GET /v1/campaigns/bulk)" sent)
bulk_campaign_wait
# The sink writes its latencies when it stops; the last messages were sent before the campaign ended.
stack_stop
trap - EXIT
kill "${SINK_PID:-}" 2>/dev/null || true

cat "$STACK_DIR/cpu.txt"
goal() { awk -v x="$1" -v goal="$2" -v le="${3:-}" 'BEGIN { ok = le ? x <= goal : x >= goal; printf "%s", ok ? "met" : "not met" }'; }
ratio=$(awk -v x="$delivered32" -v y="$postfix" 'BEGIN { printf "%.1f", x / y }')
best=$((accepted8 > accepted32 ? accepted8 : accepted32))
printf 'accepted, 8 sessions            %6s msg/s  (%d messages)\n' "$accepted8" "$N"
printf 'accepted, 32 sessions           %6s msg/s\n' "$accepted32"
printf 'submit-to-delivered, 8 / 32     %6s / %s msg/s\n' "$delivered8" "$delivered32"
printf 'stock Postfix relay, 32         %6s msg/s\n' "$postfix"
printf 'goal accepted >= 5000 msg/s     %s (%s)\n' "$(goal "$best" 5000)" "$best"
printf 'goal delivered >= 5x Postfix    %s (%sx)\n' "$(goal "$ratio" 5)" "$ratio"
got=$(wc -l <"$STACK_DIR/latency.txt")
sort -n "$STACK_DIR/latency.txt" | awk -v n="$LATENCY_N" -v got="$got" -v bulk="$BULK" -v during="$sent_during" '{ v[NR] = $1 } END {
  if (got < n) { printf "only %d of %d timed messages reached the sink\n", got, n; exit 1 }
  printf "under bulk (%d at 100/s, %d-recipient campaign; %d of it sent meanwhile)\n", n, bulk, during
  printf "submit-to-250-at-sink p50       %.1f ms\n", v[int(got * 0.50)] / 1000
  p99 = v[int(got * 0.99)] / 1000
  printf "submit-to-250-at-sink p99       %.1f ms\n", p99
  printf "goal p99 <= 150 ms              %s\n", (p99 <= 150 ? "met" : "not met")
}'
