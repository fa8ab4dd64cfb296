#!/usr/bin/env bash
# Transactional latency under bulk load: 2,000 messages (POST /v1/messages, 100/s) sent while
# a 200,000-recipient campaign drains to the same 50 domains. Each message carries its send
# time (X-Bench-Sent, µs) and the SMTP sink records how long it took to accept it: accept-to-250
# at the sink, p50/p99/max. Redis AOF everysec, 2 workers, 1 scheduler, all on this machine.
#   scripts/bench-latency.sh [MESSAGES] [RECIPIENTS]
#   BATCH=500 CHUNK=2000 scripts/bench-latency.sh   other worker.batch / scheduler.expand_chunk
# Two workers and a scheduler share two cores here, so each process runs one runtime thread
# (TOKIO_WORKER_THREADS=1; the rule for operators: runtime threads per process = cores /
# processes on the host). More threads than cores only make the latency-critical threads
# queue behind bulk ones in the kernel's scheduler.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 2 "$@"
MESSAGES=${1:-2000}
N=${2:-200000}
count_arg MESSAGES "$MESSAGES" 1 1000000
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
source scripts/lib/stack.sh
trap stack_stop EXIT
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}

stack_start_redis --appendonly yes --appendfsync everysec
stack_start_sink --latency-header X-Bench-Sent --latency-out "$STACK_DIR/latency.txt"
stack_write_config "$(bench_toml "${BATCH:-200}" "${CHUNK:-1000}")"
stack_start_scheduler
stack_start_workers 2

bulk_campaign_start "$N"
t0=$BULK_STARTED

python3 - "$API_PORT" "$TOKEN" "$MESSAGES" <<'PY'
import http.client, json, sys, time
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
start = time.monotonic()
for i in range(n):
    # 100 messages a second, spread evenly.
    delay = start + i / 100 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
    sent = time.time_ns() // 1000
    body = json.dumps({"from": "account@shop.example", "to": f"tx{i}@d{i % 50}.example",
                       "subject": "Your code", "text": f"Code {i}", "headers": {"X-Bench-Sent": str(sent)}})
    conn.request("POST", "/v1/messages", body, {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    reply = conn.getresponse()
    reply.read()
    if reply.status != 202:
        sys.exit(f"message {i}: HTTP {reply.status}")
PY
t1=$(date +%s.%N)
sent_during=$(json_field "$(api GET /v1/campaigns/bulk)" sent)
bulk_campaign_wait
t2=$BULK_COMPLETED
stack_stop
trap - EXIT
got=$(wc -l <"$STACK_DIR/latency.txt")
sort -n "$STACK_DIR/latency.txt" | awk -v n="$MESSAGES" -v got="$got" -v bulk="$N" -v during="$sent_during" \
  -v t0="$t0" -v t1="$t1" -v t2="$t2" '{ v[NR] = $1 } END {
  if (got < n) { printf "only %d of %d messages reached the sink\n", got, n; exit 1 }
  printf "transactional messages   %d at 100/s while a %d-recipient campaign drained (2 workers)\n", n, bulk
  printf "accept-to-250 p50        %.1f ms\n", v[int(got * 0.50)] / 1000
  printf "accept-to-250 p99        %.1f ms   (target <= 100 ms)\n", v[int(got * 0.99)] / 1000
  printf "accept-to-250 max        %.1f ms\n", v[got] / 1000
  printf "bulk sent by the end     %d of %d (campaign done %.1f s after start, %.0f msg/s)\n", during, bulk, t2 - t0, bulk / (t2 - t0)
}'
