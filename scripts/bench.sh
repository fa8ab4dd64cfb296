#!/usr/bin/env bash
# One side-by-side round on this machine, the same 2 KB message, the same receiving
# smtp-sink (Postfix's):
#   (a) smtp-source into smtp-sink over 20 pooled connections: raw SMTP
#   (b) smtp-source into a stock Postfix relay (loopback, ports of its own) into smtp-sink
#   (c) Sluice end to end, API to sink, no DKIM (scripts/bench-sluice.sh)
#   (d) Sluice with RSA-2048 DKIM
#   (e) openssl speed -multi 2 rsa2048: RSA-2048 signatures per second on both cores
# Prints msg/s for each and the ratios c/a (goal >= 0.6), c/b (>= 10), d/e (>= 0.5).
#   scripts/bench.sh [RECIPIENTS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 2 "$@"
N=${1:-50000}
WORKERS=${2:-2}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
count_arg WORKERS "$WORKERS" 1 "$MAX_WORKERS"
RAW=50000       # messages for (a)
RELAYED=20000   # messages for (b): Postfix is two orders of magnitude slower than raw
SIGNED=$N        # recipients for (d), as many as (c)
source scripts/lib/stack.sh
source scripts/lib/postfix.sh
postfix_bench_setup

# inject PORT COUNT : smtp-source sends COUNT 2 KB messages over 20 kept-open connections,
# then waits for the sink to have them all; prints msg/s from first send to last receipt.
inject() {
  local port=$1 count=$2 target t0 t1
  target=$(($(sink_count) + count))
  t0=$(date +%s.%N)
  smtp-source -d -s 20 -m "$count" -l 2048 -f bench@shop.example -t reader@d0.example "127.0.0.1:$port"
  local deadline=$((SECONDS + 600))
  until [ "$(sink_count)" -ge "$target" ]; do
    if [ $SECONDS -gt $deadline ]; then echo "the sink never got all $count messages" >&2; exit 1; fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  awk -v n="$count" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }'
}

echo "== (a) smtp-source -> smtp-sink"
a=$(inject "$SINK_PORT" "$RAW")
echo "== (b) smtp-source -> Postfix relay -> smtp-sink"
postfix_start_relay "$SINK_PORT"
b=$(inject "$PF_PORT" "$RELAYED")
postfix_stop_relay
echo "== (c) Sluice, API -> smtp-sink"
c=$(SINK_PORT=$SINK_PORT scripts/bench-sluice.sh "$N" "$WORKERS" | tee "$STACK_DIR/c.txt" | awk '/^end-to-end/ { print $2 }')
echo "== (d) Sluice with RSA-2048 DKIM"
d=$(DKIM=1 SINK_PORT=$SINK_PORT scripts/bench-sluice.sh "$SIGNED" "$WORKERS" | tee "$STACK_DIR/d.txt" | awk '/^end-to-end/ { print $2 }')
echo "== (e) openssl speed -multi 2 rsa2048"
e=$(openssl speed -seconds 5 -multi 2 rsa2048 2>/dev/null | awk '/^rsa 2048 bits/ { print $6 }')

ratio() { awk -v x="$1" -v y="$2" -v goal="$3" -v name="$4" 'BEGIN { r = x / y; printf "%-5s %6.2f  goal >= %-4s %s\n", name, r, goal, (r >= goal ? "met" : "not met") }'; }
printf '(a) raw SMTP, smtp-source -> smtp-sink     %7s msg/s  (%d messages)\n' "$a" "$RAW"
printf '(b) stock Postfix relay                    %7s msg/s  (%d messages)\n' "$b" "$RELAYED"
printf '(c) Sluice, API to sink, %d workers         %7s msg/s  (%d recipients)\n' "$WORKERS" "$c" "$N"
printf '(d) Sluice with RSA-2048 DKIM              %7s msg/s  (%d recipients)\n' "$d" "$SIGNED"
printf '(e) openssl RSA-2048 signatures, 2 cores   %7s sign/s\n' "$e"
ratio "$c" "$a" 0.6 c/a
ratio "$c" "$b" 10 c/b
ratio "$d" "$e" 0.5 d/e
