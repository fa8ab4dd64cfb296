# A whole local Sluice for the demo and the benchmarks: Redis, an SMTP sink, the scheduler
# and workers (and PostgreSQL for the history), each on a free port of 127.0.0.1, all stopped by
# stack_stop (set as an EXIT trap).
# Sourcing it installs what is missing (redis-server, curl) and builds the release binaries
# (unless STACK_BIN names binaries already built).

source "$(dirname "${BASH_SOURCE[0]}")/install.sh"
ensure_debian_packages redis-server redis-tools curl openssl libssl-dev pkg-config
# STACK_BIN names a folder of binaries already built (scripts/api-fuzz.sh uses the debug
# ones that scripts/test.sh built); otherwise the release binaries are built here.
if [ -n "${STACK_BIN:-}" ]; then
  BIN=$STACK_BIN
else
  echo "== building (release)"
  # The sink comes with the test kit; crash points (feature failpoints) stay out of these builds.
  cargo build --release --workspace --quiet
  BIN=${CARGO_TARGET_DIR:-target}/release
fi

STACK_DIR=$(mktemp -d -t sluice-stack.XXXXXX)
STACK_PIDS=()
STACK_NAMES=()
TOKEN="local-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

stack_stop() {
  for pid in "${STACK_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${STACK_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  local port
  for port in ${REDIS_NODES[@]+"${REDIS_NODES[@]}"} ${REDIS_PORT:-}; do
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
  done
  # The logs stay in STACK_DIR; PostgreSQL's data (gigabytes after bench-history.sh) does not.
  rm -rf "$STACK_DIR/pg"
  rm -f "${TMPDIR:-/tmp}/sluice-ports.$$"
}

# wait_until DESCRIPTION SECONDS COMMAND... : polls COMMAND every 0.1 s until it succeeds.
wait_until() {
  local what=$1 secs=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for $what (logs in $STACK_DIR)" >&2; return 1; fi
    sleep 0.1
  done
}

# stack_start_redis [extra redis-server args...]
stack_start_redis() {
  REDIS_PORT=$(free_port)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$STACK_DIR" --save "" "$@" >"$STACK_DIR/redis.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=(redis-server)
  wait_until "redis-server" 10 redis-cli -p "$REDIS_PORT" ping
}

# stack_start_cluster [extra redis-server args...] : three masters joined into a Redis Cluster,
# each with CLUSTER_REPLICAS replicas (default 0); returns once every replica is in sync.
# REDIS_NODES holds the ports, NODE_PIDS[port] each node's pid, REDIS_PORT the first, and the
# config written next uses mode = "cluster". Nodes use allkeys-lfu with no memory limit:
# nothing is ever evicted, but each key's access frequency is kept, so `redis-cli --hotkeys`
# works. Bus ports are chosen like the others (Redis's default, port + 10000, may be taken).
declare -A NODE_PIDS
stack_start_cluster() {
  REDIS_NODES=()
  local port addresses=() replicas=${CLUSTER_REPLICAS:-0}
  for _ in $(seq 1 $((3 * (1 + replicas)))); do
    port=$(free_port)
    mkdir -p "$STACK_DIR/node-$port"
    stack_node "$port" --port "$port" --cluster-port "$(free_port)" --bind 127.0.0.1 --dir "$STACK_DIR/node-$port" \
      --save "" --cluster-enabled yes --cluster-node-timeout 2000 --maxmemory-policy allkeys-lfu "$@"
    REDIS_NODES+=("$port"); addresses+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${addresses[@]}" --cluster-replicas "$replicas" --cluster-yes \
    >"$STACK_DIR/cluster-create.log"
  for port in "${REDIS_NODES[@]}"; do
    wait_until "cluster_state:ok on $port" 20 bash -c "redis-cli -p $port CLUSTER INFO | grep -q cluster_state:ok"
    if redis-cli -p "$port" INFO replication | grep -q role:slave; then
      wait_until "replica $port in sync" 60 bash -c "redis-cli -p $port INFO replication | grep -q master_link_status:up"
    fi
  done
  REDIS_PORT=${REDIS_NODES[0]}
  REDIS_MODE=cluster
}

# stack_node PORT REDIS-SERVER-ARGS... : one node of a cluster or a Sentinel deployment, its command
# line kept (in its folder) for stack_restart_node.
stack_node() {
  local port=$1; shift
  printf '%q ' redis-server "$@" >"$STACK_DIR/node-$port/command"
  stack_restart_node "$port"
}

# stack_restart_node PORT : starts the node on PORT (again, after a kill) with its own command
# line and folder: it finds its AOF, and a cluster node its nodes.conf.
stack_restart_node() {
  local port=$1
  # exec: the pid kept is the server's own, not a subshell's (a kill -9 must reach the server).
  eval "exec $(cat "$STACK_DIR/node-$port/command")" >>"$STACK_DIR/redis-$port.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=("redis-$port"); NODE_PIDS[$port]=$!
  wait_until "redis-server on $port" 10 node_cli "$port" ping
}

# node_host PORT : the address of the node on PORT (127.0.0.1 unless NODE_HOST says otherwise:
# scripts/lib/partition.sh puts one in a network namespace of its own).
declare -A NODE_HOST
node_host() { echo "${NODE_HOST[$1]:-127.0.0.1}"; }

# node_cli PORT ARGS... : redis-cli on the node on PORT.
node_cli() {
  local port=$1; shift
  redis-cli -h "$(node_host "$port")" -p "$port" "$@"
}

# stack_start_sentinel [REDIS-SERVER ARGS...] : one master, one replica (in sync before this
# returns) and three sentinels (quorum 2, master down after 1 s) under the name "sluice".
stack_start_sentinel() {
  local port master replica
  REDIS_NODES=()
  for role in master replica; do
    port=$(free_port)
    mkdir -p "$STACK_DIR/node-$port"
    if [ "$role" = replica ]; then set -- "$@" --replicaof 127.0.0.1 "$master"; fi
    stack_node "$port" --port "$port" --bind 127.0.0.1 --dir "$STACK_DIR/node-$port" --save "" "$@"
    REDIS_NODES+=("$port")
    [ "$role" = master ] && master=$port || replica=$port
  done
  wait_until "replica $replica in sync" 60 bash -c "redis-cli -p $replica INFO replication | grep -q master_link_status:up"
  SENTINELS=()
  for _ in 1 2 3; do
    port=$(free_port)
    mkdir -p "$STACK_DIR/sentinel-$port"
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor sluice 127.0.0.1 %s 2\nsentinel down-after-milliseconds sluice 1000\nsentinel failover-timeout sluice 5000\n' \
      "$port" "$STACK_DIR/sentinel-$port" "$master" >"$STACK_DIR/sentinel-$port/sentinel.conf"
    redis-server "$STACK_DIR/sentinel-$port/sentinel.conf" --sentinel >"$STACK_DIR/sentinel-$port.log" 2>&1 &
    STACK_PIDS+=($!); STACK_NAMES+=("sentinel-$port")
    SENTINELS+=("$port")
  done
  for port in "${SENTINELS[@]}"; do
    wait_until "sentinel $port to know the others" 30 bash -c \
      "[ \"\$(redis-cli -p $port SENTINEL sentinels sluice | grep -c '^name$')\" = 2 ]"
    # A sentinel whose clock ticks late by 2 s (a stalled config fsync on a busy VM) goes into
    # tilt and decides nothing for 30 s: a returning master would stay a lone master that long.
    # 5 s keeps the guard while leaving a paced campaign running through the rejoin.
    redis-cli -p "$port" SENTINEL DEBUG tilt-period 5000 >/dev/null
  done
  REDIS_PORT=$master
  REDIS_MODE=sentinel
}

# sentinel_master : the port the sentinels name master now (empty if none answers).
sentinel_master() {
  local port
  for port in "${SENTINELS[@]}"; do
    redis-cli -p "$port" SENTINEL get-master-addr-by-name sluice 2>/dev/null | sed -n 2p && return
  done
}

# redis_toml : the [redis] section's body for the Redis this stack started.
redis_toml() {
  case "${REDIS_MODE:-single}" in
    sentinel) printf 'sentinels = [%s]\nmaster_name = "sluice"\n' \
      "$(printf '"redis://127.0.0.1:%s",' "${SENTINELS[@]}" | sed 's/,$//')" ;;
    cluster) printf 'mode = "cluster"\nseeds = [%s]\n' \
      "$(for p in "${REDIS_NODES[@]}"; do printf '"redis://%s:%s/0",' "$(node_host "$p")" "$p"; done | sed 's/,$//')" ;;
    *) printf 'url = "redis://127.0.0.1:%s/0"\n' "$REDIS_PORT" ;;
  esac
}

# cluster_master_of KEY [NODE_PORT] : the port of the master serving KEY's slot, as the node
# on NODE_PORT (default REDIS_PORT) sees it.
cluster_master_of() {
  local port=${2:-$REDIS_PORT} slot
  slot=$(redis-cli -p "$port" CLUSTER KEYSLOT "$1")
  redis-cli -p "$port" CLUSTER NODES | awk -v s="$slot" '$3 ~ /master/ && $3 !~ /fail/ {
    for (i = 9; i <= NF; i++) {
      n = split($i, r, "-"); if (n == 1) r[2] = r[1]
      if (s >= r[1] + 0 && s <= r[2] + 0) { split($2, a, "[:@]"); print a[2] }
    }
  }'
}

# stack_start_postgres [PORT] : a PostgreSQL of this run (Debian's package, installed if missing):
# initdb into STACK_DIR, a free port, a database "sluice"; PG_PORT, PG_URL and psql_sluice
# (psql on it) are set. Run as the postgres user when we are root (PostgreSQL refuses root;
# setpriv execs in place, so the pid kept is the server's own).
stack_start_postgres() {
  ensure_debian_packages postgresql
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
  PG_PORT=${1:-$(free_port)}
  local as=() data="$STACK_DIR/pg"
  mkdir -p "$data"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$STACK_DIR" "$data"; as=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
  "${as[@]}" "$PG_BIN/initdb" -U sluice -A trust -E UTF8 --locale=C --no-sync -D "$data" >"$STACK_DIR/initdb.log"
  "${as[@]}" "$PG_BIN/postgres" -D "$data" -p "$PG_PORT" -c listen_addresses=127.0.0.1 -k "$STACK_DIR" \
    >"$STACK_DIR/postgres.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=(postgres)
  wait_until "PostgreSQL" 30 "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
  psql_sluice postgres -c "CREATE DATABASE sluice" >/dev/null
  PG_URL="postgres://sluice@127.0.0.1:$PG_PORT/sluice"
}

# psql_sluice [DATABASE] ARGS... : psql on this run's PostgreSQL (database sluice by default).
psql_sluice() {
  local db=sluice
  [ "${1:-}" = postgres ] && { db=postgres; shift; }
  "$PG_BIN/psql" -X -At -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U sluice -d "$db" "$@"
}

# stack_start_sink [extra sluice-sink args...]
stack_start_sink() {
  SINK_PORT=$(free_port)
  "$BIN/sluice-sink" --listen "127.0.0.1:$SINK_PORT" --every 1 "$@" >"$STACK_DIR/sink.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=(smtp-sink)
  wait_until "SMTP sink" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SINK_PORT"
}

# stack_use_sink PORT : relay to an SMTP sink that is already listening on 127.0.0.1:PORT.
stack_use_sink() {
  SINK_PORT=$1
}

# stack_write_config EXTRA_TOML : the config every process shares.
stack_write_config() {
  API_PORT=$(free_port)
  SCHED_METRICS_PORT=$(free_port)
  PUBLIC_PORT=$(free_port)
  CONFIG="$STACK_DIR/sluice.toml"
  cat >"$CONFIG" <<TOML
[redis]
$(redis_toml)

[api]
listen = "127.0.0.1:$API_PORT"

[[api.keys]]
id = "scripts"
sha256 = "$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)"
scopes = ["admin"]

[metrics]
listen = "127.0.0.1:$SCHED_METRICS_PORT"

[public]
listen = "127.0.0.1:$PUBLIC_PORT"
base_url = "http://127.0.0.1:$PUBLIC_PORT"
secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[[smtp.relays]]
host = "127.0.0.1"
port = $SINK_PORT

[dkim]
missing_key = "send"   # messages from domains without [[dkim.keys]] go out unsigned

$1
TOML
}

# stack_start_scheduler [NAME] : the first one serves api.listen; others get their own ports.
stack_start_scheduler() {
  local name=${1:-scheduler-1} api=$API_PORT metrics=$SCHED_METRICS_PORT public=$PUBLIC_PORT
  if [ "$name" != scheduler-1 ]; then api=$(free_port); metrics=$(free_port); public=$(free_port); fi
  SLUICE__SCHEDULER__NAME="$name" SLUICE__API__LISTEN="127.0.0.1:$api" SLUICE__METRICS__LISTEN="127.0.0.1:$metrics" \
    SLUICE__PUBLIC__LISTEN="127.0.0.1:$public" \
    "$BIN/sluice-scheduler" --config "$CONFIG" >"$STACK_DIR/$name.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=("$name")
  SCHEDULER_PIDS+=($!)
  SCHEDULER_APIS+=("$api")
  wait_until "scheduler API" 20 curl -sf "http://127.0.0.1:$api/healthz"
}
SCHEDULER_PIDS=()
SCHEDULER_APIS=()

# stack_start_worker NAME : one worker with its own metrics port; its pid is in LAST_PID.
WORKER_METRICS=()
stack_start_worker() {
  local port
  port=$(free_port)
  SLUICE__WORKER__NAME="$1" SLUICE__METRICS__LISTEN="127.0.0.1:$port" \
    "$BIN/sluice-worker" --config "$CONFIG" >>"$STACK_DIR/$1.log" 2>&1 &
  LAST_PID=$!
  STACK_PIDS+=($!); STACK_NAMES+=("$1")
  WORKER_METRICS+=("http://127.0.0.1:$port/metrics")
}

# stack_start_workers N : workers named worker-1..N.
stack_start_workers() {
  local i
  for i in $(seq 1 "$1"); do stack_start_worker "worker-$i"; done
}

# bench_toml BATCH CHUNK [RATE] : the benchmarks' config: no rate limit (or RATE messages per
# second to each destination), 16 connections per destination, worker.batch = BATCH,
# scheduler.expand_chunk = CHUNK.
bench_toml() {
  cat <<TOML
[limits.default]
rate = "${3:-1000000}/s"
burst = ${3:-1000000}
connections = 16

[worker]
batch = $1
max_inflight = 4000

[scheduler]
expand_chunk = $2
expand_window = 50000
TOML
}

# api METHOD PATH [curl args...] : an authenticated admin API call.
api() {
  local method=$1 path=$2; shift 2
  curl -sS -X "$method" -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$API_PORT$path" "$@"
}

# json_field JSON NAME : the first number or string value of "NAME" in JSON (flat lookup).
json_field() {
  printf '%s' "$1" | grep -o "\"$2\":[^,}]*" | head -n1 | cut -d: -f2- | tr -d '"'
}

# recipients_ndjson COUNT DOMAINS : NDJSON recipients u<i>@d<i % DOMAINS>.example.
recipients_ndjson() {
  awk -v n="$1" -v d="$2" 'BEGIN { for (i = 0; i < n; i++) printf "{\"email\":\"u%d@d%d.example\",\"vars\":{\"name\":\"Reader %d\"}}\n", i, i % d, i }'
}

# bulk_campaign_start RECIPIENTS : the campaign "bulk" (2 KB, to 50 domains), started; returns
# once 5,000 are sent, so that a backlog has built. BULK_STARTED: when it was started.
bulk_campaign_start() {
  local html='<html><body><h1>Hello {{name}}</h1><p>Spring news, about two kilobytes with the text part.</p></body></html>'
  api POST /v1/campaigns -H 'content-type: application/json' \
    -d "{\"id\":\"bulk\",\"from\":{\"email\":\"news@shop.example\"},\"subject\":\"News for {{name}}\",\"html\":\"$html\",\"text\":\"Hello {{name}}\",\"start\":false}" >/dev/null
  recipients_ndjson "$1" 50 >"$STACK_DIR/recipients.ndjson"
  api POST /v1/campaigns/bulk/recipients --data-binary @"$STACK_DIR/recipients.ndjson" >/dev/null
  BULK_STARTED=$(date +%s.%N)
  api POST /v1/campaigns/bulk/start >/dev/null
  until [ "$(json_field "$(api GET /v1/campaigns/bulk)" sent)" -ge 5000 ]; do sleep 0.05; done
}

# completed_at VIEW : when the campaign whose API view is VIEW completed, in epoch seconds (its
# own `completed_at`); fails if the view has none.
completed_at() {
  local at; at=$(json_field "$1" completed_at)
  [ -n "$at" ] && [ "$at" != null ] || { echo "no completed_at in the campaign's view: $1" >&2; return 1; }
  date -d "$at" +%s.%N
}

# campaign_wait ID : until campaign ID completes (10 minutes at most); prints when it did (see
# completed_at). Looks twice a second only: each look (curl and a few text tools) costs ~17 ms
# of CPU, which at 20 looks a second took ~6% of the cores a benchmark measures, and the
# campaign's own completion time makes the slower look lose no precision.
campaign_wait() {
  local deadline=$((SECONDS + 600)) view
  until view=$(api GET "/v1/campaigns/$1"); [ "$(json_field "$view" status)" = completed ]; do
    [ $SECONDS -gt $deadline ] && { echo "campaign $1 did not complete within 10 minutes; logs in $STACK_DIR" >&2; return 1; }
    sleep 0.5
  done
  completed_at "$view"
}

# bulk_campaign_wait : until "bulk" completes (BULK_COMPLETED: when, see campaign_wait), then
# 1.5 s for the sink to have answered the last messages.
bulk_campaign_wait() {
  BULK_COMPLETED=$(campaign_wait bulk)
  sleep 1.5
}

# stack_cpu_report MESSAGES : CPU seconds each process (with its live children: PostgreSQL's
# backends) has used, and per message.
stack_cpu_report() {
  local i ticks hz total=0 child
  hz=$(getconf CLK_TCK)
  for i in "${!STACK_PIDS[@]}"; do
    ticks=$(awk '{print $14 + $15}' "/proc/${STACK_PIDS[$i]}/stat" 2>/dev/null || echo 0)
    for child in $(pgrep -P "${STACK_PIDS[$i]}" 2>/dev/null); do
      ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
    done
    total=$((total + ticks))
    awk -v n="${STACK_NAMES[$i]}" -v t="$ticks" -v hz="$hz" -v m="$1" 'BEGIN { printf "cpu %-14s %6.2f s  %6.1f us/msg\n", n, t / hz, t / hz / m * 1e6 }'
  done
  awk -v t="$total" -v hz="$hz" -v m="$1" 'BEGIN { printf "cpu %-14s %6.2f s  %6.1f us/msg\n", "all", t / hz, t / hz / m * 1e6 }'
}
