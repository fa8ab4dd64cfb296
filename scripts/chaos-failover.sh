#!/usr/bin/env bash
# A master's death under a campaign, on either deployment with replicas (AOF everysec):
#   cluster   three masters with one replica each; the master serving the campaign's keys dies
#   sentinel  one master, one replica, three sentinels (quorum 2, master down after 1 s)
# A campaign (default 60,000 recipients over 50 domains) runs through two workers and one
# scheduler. Once a third is sent, the master is killed with -9 and its replica takes over.
# The scenario says what follows:
#   kill      nothing more (the default)
#   rejoin    the killed master starts again on its own data and rejoins as a replica
#   twice     as rejoin; once it is in sync, the new master is killed too (a second failover)
#   partition (cluster, as root) instead of a kill, that master and one of three workers are cut
#             off in a network namespace (scripts/lib/partition.sh) for 6 s, three node
#             timeouts; the master takes the island worker's writes until it notices, then
#             the rest fail it over; healed, it rejoins as a replica and those writes are lost
# Scenarios other than kill pace the campaign to ~45 s so that it is still running through them.
# Prints how long no master served the campaign after each kill, the jobs in flight at each
# kill, the campaign's counts, and what the sink received (unique, duplicates, missing). Exits
# non-zero unless the campaign completes with every recipient counted once and delivered.
#   scripts/chaos-failover.sh cluster|sentinel [RECIPIENTS] [kill|rejoin|twice|partition]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 3 "$@"
[ $# -ge 1 ] || usage_error "name the deployment: cluster or sentinel"
DEPLOYMENT=$1
choice_arg DEPLOYMENT "$DEPLOYMENT" cluster sentinel
N=${2:-60000}
count_arg RECIPIENTS "$N" 1 "$MAX_RECIPIENTS"
SCENARIO=${3:-kill}
choice_arg SCENARIO "$SCENARIO" kill rejoin twice partition
[ "$SCENARIO" != partition ] || [ "$DEPLOYMENT" = cluster ] || usage_error "the partition scenario runs on a cluster"
DOMAINS=50
source scripts/lib/stack.sh
source scripts/lib/partition.sh
trap 'stack_stop; partition_remove' EXIT

if [ "$SCENARIO" = partition ]; then
  partition_create
  partition_cluster '{c:failover}' --appendonly yes --appendfsync everysec
elif [ "$DEPLOYMENT" = cluster ]; then
  CLUSTER_REPLICAS=1 stack_start_cluster --appendonly yes --appendfsync everysec
else
  stack_start_sentinel --appendonly yes --appendfsync everysec
fi
stack_start_sink --dump "$STACK_DIR/delivered.txt"
SINK_PIDS=("${STACK_PIDS[-1]}")
# After a kill alone the campaign runs at full speed; a rejoin takes seconds (15 on Sentinel,
# whose sentinels look at a returning node every 10 s), so the other scenarios pace the
# campaign to about 45 s to leave it running through the rejoin, the heal, the second kill.
rate=1000000
[ "$SCENARIO" = kill ] || rate=$(( (N + 45 * DOMAINS - 1) / (45 * DOMAINS) ))
stack_write_config "$(bench_toml 200 2000 "$rate")"
stack_start_scheduler
stack_start_workers 2
if [ "$SCENARIO" = partition ]; then
  partition_worker worker-island "$STACK_DIR/island-delivered.txt"
  SINK_PIDS+=("$ISLAND_SINK_PID")
fi

# master_now [ASK_PORT] : the port serving the campaign's keys now, as the cluster (asked on
# ASK_PORT) or the sentinels see it.
master_now() {
  if [ "$DEPLOYMENT" = cluster ]; then cluster_master_of '{c:failover}' "${1:-$REDIS_PORT}"; else sentinel_master; fi
}
# in_flight PORT : jobs handed to workers and not yet acked, over every domain stream (one
# redis-cli for all of them: the count is taken at the kill, not seconds before it).
in_flight() {
  local d
  for d in $(seq 0 $((DOMAINS - 1))); do echo "XINFO GROUPS sluice:{d:d$d.example}:q"; done |
    node_cli "$1" -c 2>/dev/null | awk 'prev == "pending" { n += $1 } { prev = $1 } END { print n + 0 }'
}

api POST /v1/campaigns -H 'content-type: application/json' \
  -d '{"id":"failover","from":{"email":"news@shop.example"},"subject":"Hello {{name}}","text":"Hello {{name}}","start":false}' >/dev/null
recipients_ndjson "$N" "$DOMAINS" >"$STACK_DIR/recipients.ndjson"
api POST /v1/campaigns/failover/recipients --data-binary @"$STACK_DIR/recipients.ndjson" >/dev/null
api POST /v1/campaigns/failover/start >/dev/null
started=$(date +%s.%N)
sent_now() { json_field "$(api GET /v1/campaigns/failover --max-time 2 2>/dev/null || true)" sent; }
status_now() { json_field "$(api GET /v1/campaigns/failover --max-time 2 2>/dev/null || true)" status; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# kill_master : kills -9 the master serving the campaign now and waits for another to serve it.
# Adds to HELD the jobs in flight at the kill and to NO_MASTER how long none served.
HELD=0
NO_MASTER=()
kill_master() {
  local victim survivor held master t0 deadline
  victim=$(master_now)
  for survivor in "${REDIS_NODES[@]}"; do if [ "$survivor" != "$victim" ]; then break; fi; done
  held=$(in_flight "$victim")
  HELD=$((HELD + held))
  echo "== $DEPLOYMENT: kill -9 the master serving the campaign (port $victim) at sent=$(sent_now), $held jobs in flight, \
$(awk -v n="$(sent_now)" -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f msg/s so far", n / (b - a) }')"
  kill -9 "${NODE_PIDS[$victim]}"
  { wait "${NODE_PIDS[$victim]}"; } 2>/dev/null || true # reaped here, without bash's "Killed" line
  t0=$(date +%s.%N)
  deadline=$((SECONDS + 60))
  until master=$(master_now "$survivor") && [ -n "$master" ] && [ "$master" != "$victim" ]; do
    [ $SECONDS -lt $deadline ] || { echo "no replica took over within 60 s (logs in $STACK_DIR)" >&2; exit 1; }
    sleep 0.1
  done
  NO_MASTER+=("$(elapsed "$t0")")
  echo "== port $master serves the campaign now, $(elapsed "$t0") s after the kill"
  KILLED=$victim
  KILL_AT=${KILL_AT:-$t0}
}

# partition_master : cuts the island (the master serving the campaign, one worker) off, waits
# for another master to serve the campaign, heals the cut 6 s after it was made and waits until
# the island's master is a replica in sync. Adds to HELD and NO_MASTER as kill_master does.
partition_master() {
  local held t0 master
  held=$(in_flight "$ISLAND_PORT")
  HELD=$((HELD + held))
  echo "== cluster: cut off the master serving the campaign (port $ISLAND_PORT) and one worker at sent=$(sent_now), $held jobs in flight"
  partition_cut
  t0=$(date +%s.%N)
  KILL_AT=$t0
  local deadline=$((SECONDS + 60))
  until master=$(master_now) && [ -n "$master" ] && [ "$master" != "$ISLAND_PORT" ]; do
    [ $SECONDS -lt $deadline ] || { echo "no replica took over within 60 s (logs in $STACK_DIR)" >&2; exit 1; }
    sleep 0.1
  done
  NO_MASTER+=("$(elapsed "$t0")")
  echo "== port $master serves the campaign now, $(elapsed "$t0") s after the cut"
  while awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a < 6) }'; do sleep 0.1; done
  partition_heal
  echo "== healed $(elapsed "$t0") s after the cut, at sent=$(sent_now)"
  wait_until "port $ISLAND_PORT to rejoin as a replica in sync" 60 \
    bash -c "redis-cli -h $PART_ISLAND -p $ISLAND_PORT INFO replication | grep -q master_link_status:up"
  echo "== port $ISLAND_PORT is back as a replica in sync ($(elapsed "$t0") s after the cut), at sent=$(sent_now)"
}

# rejoin_report PORT : what a rejoin that did not happen leaves to read: the node's replication
# state, and on Sentinel what the sentinels decided (tilt, conversion) since the kill.
rejoin_report() {
  echo "port $1 now: $(redis-cli -p "$1" INFO replication | grep -E '^(role|master_link_status|master_port):' | tr -d '\r' | tr '\n' ' ')" >&2
  if [ "$DEPLOYMENT" = sentinel ]; then
    grep -hE 'tilt|convert-to-slave|fix-slave-config|switch-master|sdown slave' "$STACK_DIR"/sentinel-*.log | tail -n 20 >&2
  fi
  tail -n 15 "$STACK_DIR/redis-$1.log" >&2
}

# rejoin PORT : starts the killed node again and waits until it is a replica in sync.
rejoin() {
  local t0
  t0=$(date +%s.%N)
  stack_restart_node "$1"
  wait_until "port $1 to rejoin as a replica in sync" 90 \
    bash -c "redis-cli -p $1 INFO replication | grep -q master_link_status:up" || { rejoin_report "$1"; exit 1; }
  echo "== port $1 is back as a replica in sync ($(elapsed "$t0") s), at sent=$(sent_now)"
}

deadline=$((SECONDS + 120))
until [ "$(sent_now)" -gt $((N / 3)) ] 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "a third was not sent within 120 s (logs in $STACK_DIR)" >&2; exit 1; }
  sleep 0.05
done
if [ "$SCENARIO" = partition ]; then partition_master; else kill_master; fi
if [ "$SCENARIO" = rejoin ] || [ "$SCENARIO" = twice ]; then rejoin "$KILLED"; fi
if [ "$SCENARIO" = twice ]; then
  [ "$(status_now)" != completed ] ||
    { echo "the campaign completed before the second kill: give more recipients" >&2; exit 1; }
  kill_master
fi
deadline=$((SECONDS + 120))
view=""
while [ $SECONDS -lt $deadline ]; do
  view=$(api GET /v1/campaigns/failover --max-time 2 2>/dev/null || true)
  [ "$(json_field "$view" status)" = completed ] && break
  sleep 0.2
done
done_in=$(elapsed "$KILL_AT")
sleep 1.5
kill -TERM "${SINK_PIDS[@]}"; wait "${SINK_PIDS[@]}" 2>/dev/null || true
# Each sink's dump holds "address count" lines; an address both received counts in each.
cat "$STACK_DIR"/*delivered.txt | awk '{ n[$1] += $2 } END { for (a in n) print a, n[a] }' >"$STACK_DIR/sinks.txt"
unique=$(wc -l <"$STACK_DIR/sinks.txt")
total=$(awk '{ n += $2 } END { print n + 0 }' "$STACK_DIR/sinks.txt")
status=$(json_field "$view" status); sent=$(json_field "$view" sent); queued=$(json_field "$view" queued)
echo "no master             ${NO_MASTER[*]/%/ s} (each kill or cut to a new master)"
echo "kill to completion    $done_in s (from the first kill or the cut)"
echo "campaign              status=$status sent=$sent queued=$queued (of $N)"
echo "sink                  $total delivered, $unique unique, $((total - unique)) duplicates (jobs in flight at the kills: $HELD), $((N - unique)) missing"
if [ "$status" = completed ] && [ "$sent" = "$N" ] && [ "$unique" = "$N" ]; then
  echo "OK: completed, every recipient counted once and delivered at least once"
else
  echo "FAILED: not every recipient counted once and delivered (docs/operations.md: Failover under a campaign; logs in $STACK_DIR)" >&2
  exit 1
fi
