#!/usr/bin/env bash
# Sluice on a three-master Redis Cluster: four campaigns (RECIPIENTS in all, 50 domains) and
# 200 transactional messages, 2 workers, 1 scheduler. Prints the send rate, then how the
# keys and the traffic spread over the masters: slots, keys by kind of hash tag, commands and
# CPU each node spent during the run, and the hottest keys (LFU access frequency).
# CLUSTER_REPLICAS=1 gives each master a replica (Sluice then waits for it at each hand-off;
# SLUICE__REDIS__REPLICA_ACK_TIMEOUT=0ms turns that off, to see what the safety costs).
#   scripts/bench-cluster.sh [RECIPIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 1 "$@"
N=${1:-100000}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
source scripts/lib/stack.sh
trap stack_stop EXIT
export TOKIO_WORKER_THREADS=${TOKIO_WORKER_THREADS:-1}

stack_start_cluster
stack_start_sink
stack_write_config "$(bench_toml 500 2000)"
stack_start_scheduler
stack_start_workers 2

node() { local port=$1; shift; redis-cli -p "$port" "$@"; }
info_field() { node "$1" INFO "$2" | awk -F: -v f="$3" '$1 == f { print $2 + 0 }'; }
cpu_of() { node "$1" INFO cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { printf "%.2f", s }'; }
declare -A CMDS0 CPU0
for port in "${REDIS_NODES[@]}"; do
  CMDS0[$port]=$(info_field "$port" stats total_commands_processed)
  CPU0[$port]=$(cpu_of "$port")
done

per=$((N / 4))
t0=$(date +%s.%N)
for c in 1 2 3 4; do
  api POST /v1/campaigns -H 'content-type: application/json' \
    -d "{\"id\":\"spread$c\",\"from\":{\"email\":\"news@shop.example\"},\"subject\":\"Hello {{name}}\",\"text\":\"Hello {{name}}\",\"start\":false}" >/dev/null
  recipients_ndjson "$per" 50 >"$STACK_DIR/recipients.ndjson"
  api POST "/v1/campaigns/spread$c/recipients" --data-binary @"$STACK_DIR/recipients.ndjson" >/dev/null
  api POST "/v1/campaigns/spread$c/start" >/dev/null
done
for i in $(seq 1 200); do
  api POST /v1/messages -H 'content-type: application/json' \
    -d "{\"from\":\"alerts@shop.example\",\"to\":\"t$i@d$((i % 50)).example\",\"subject\":\"Code $i\",\"text\":\"Your code is $i\"}" >/dev/null
done
# Two seconds of every command on every master, mid-run, classified by the key it touches.
monitors=()
for port in "${REDIS_NODES[@]}"; do
  timeout 2 redis-cli -p "$port" MONITOR >"$STACK_DIR/monitor-$port" 2>/dev/null &
  monitors+=($!)
done
wait "${monitors[@]}" || true
# The end is the last of the four campaigns' completions.
t1=$(for c in 1 2 3 4; do campaign_wait "spread$c"; done | sort -n | tail -n1)
sent=0
for c in 1 2 3 4; do sent=$((sent + $(json_field "$(api GET /v1/campaigns/spread$c)" sent))); done
awk -v n="$N" -v s="$sent" -v t0="$t0" -v t1="$t1" -v replicas="${CLUSTER_REPLICAS:-0}" 'BEGIN {
  printf "cluster                 3 masters, %d replica(s) each; 2 workers, 1 scheduler\n", replicas
  printf "campaigns               4 x %d recipients over 50 domains, + 200 messages\n", n / 4
  printf "sent                    %d of %d in %.2f s (%.0f msg/s, upload included)\n", s, n, t1 - t0, s / (t1 - t0)
}'

# The hand-offs that waited for a replica, by result (none without replicas).
for url in "${WORKER_METRICS[@]}" "http://127.0.0.1:$SCHED_METRICS_PORT/metrics"; do curl -s "$url"; done |
  awk -F'[{}]' '/^sluice_redis_replica_waits_total\{/ { split($2, l, /result="/); r = substr(l[2], 1, index(l[2], "\"") - 1); n[r] += $3 }
    END { printf "replica waits          "; for (r in n) printf " %s=%d", r, n[r]; print "" }'
echo
printf "%-7s %6s %6s %8s %8s %8s %8s %12s %8s\n" node slots keys "{c:..}" "{d:..}" "{e:..}" other commands "cpu s"
for port in "${REDIS_NODES[@]}"; do
  slots=$(node "$port" CLUSTER NODES | awk '/myself/ { n = 0; for (i = 9; i <= NF; i++) { split($i, r, "-"); n += (r[2] == "" ? 1 : r[2] - r[1] + 1) } print n }')
  node "$port" --scan >"$STACK_DIR/keys-$port"
  count() { grep -c "$1" "$STACK_DIR/keys-$port" || true; }
  total=$(wc -l <"$STACK_DIR/keys-$port")
  c=$(count '{c:'); d=$(count '{d:'); e=$(count '{e:')
  cmds=$(( $(info_field "$port" stats total_commands_processed) - CMDS0[$port] ))
  cpu=$(awk -v a="$(cpu_of "$port")" -v b="${CPU0[$port]}" 'BEGIN { printf "%.2f", a - b }')
  printf "%-7s %6s %6s %8s %8s %8s %8s %12s %8s\n" "$port" "$slots" "$total" "$c" "$d" "$e" "$((total - c - d - e))" "$cmds" "$cpu"
done

echo
echo "commands by the key they touch (2 s of MONITOR on every master, mid-run):"
for port in "${REDIS_NODES[@]}"; do
  awk 'match($0, /"sluice:[^"]*"/) { print substr($0, RSTART + 1, RLENGTH - 2) }' "$STACK_DIR/monitor-$port"
done | awk '{
  key = $1
  if (key ~ /^sluice:\{c:/) class = "per campaign  {c:ID}"
  else if (key ~ /^sluice:\{d:/) class = "per domain    {d:DOMAIN}"
  else if (key ~ /^sluice:\{e:/) class = "feed shards   {e:K}"
  else class = "global        " key
  n[class]++; total++
} END { for (c in n) printf "  %-44s %7d  %5.1f%%\n", c, n[c], 100 * n[c] / total }' | sort -k1,1 -s
echo
echo "hottest keys (LFU counter, logarithmic: 255 is the top) and their master"
for port in "${REDIS_NODES[@]}"; do
  while read -r key; do
    printf '%s %s %s\n' "$(node "$port" OBJECT FREQ "$key")" "$port" "$key"
  done <"$STACK_DIR/keys-$port"
done | sort -rn | awk 'NR <= 12'
echo
echo "key -> slot examples:"
for key in 'sluice:{c:spread1}:state' 'sluice:{c:spread2}:state' 'sluice:{d:d0.example}:q' 'sluice:{d:d1.example}:q' \
  'sluice:{e:0}:feed' 'sluice:{e:5}:feed' 'sluice:{r:0}:ready' 'sluice:{r:1}:ready' 'sluice:suppressed'; do
  printf '  %-28s slot %5s\n' "$key" "$(node "$REDIS_PORT" CLUSTER KEYSLOT "$key")"
done
