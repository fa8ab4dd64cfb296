# A network partition for scripts/chaos-failover.sh: a namespace of its own (the island) for
# one cluster master and one worker, joined to the rest by a veth pair, cut off and healed at
# will. Needs root (ip netns). Every node on the root side listens on PART_HOST as well as
# 127.0.0.1 and announces PART_HOST (its NODE_HOST), the island's node PART_ISLAND, so
# processes on either side reach every node at the address the cluster hands out. Sourced
# after stack.sh.
#
# The cut takes the root end of the pair down. A blackhole route for the pair's network (below
# the link's own route in priority) keeps the root side from sending the island's packets out
# of the default route meanwhile: the island's connections hang, new ones fail.

ensure_debian_packages iproute2

# partition_create : the island and the link to it (partition_remove undoes both).
partition_create() {
  [ "$(id -u)" -eq 0 ] || { echo "the partition scenario needs root (ip netns)" >&2; exit 1; }
  local net
  net=10.$((200 + RANDOM % 50)).$((RANDOM % 250))
  PART_NS=sluice-part-$$ PART_LINK=vsl$$ PART_NET=$net.0/30 PART_HOST=$net.1 PART_ISLAND=$net.2
  ip netns add "$PART_NS"
  ip link add "$PART_LINK-h" type veth peer name "$PART_LINK-n"
  ip link set "$PART_LINK-n" netns "$PART_NS"
  ip addr add "$PART_HOST/30" dev "$PART_LINK-h"
  ip link set "$PART_LINK-h" up
  ip route add blackhole "$PART_NET" metric 100
  in_island ip addr add "$PART_ISLAND/30" dev "$PART_LINK-n"
  in_island ip link set "$PART_LINK-n" up
  in_island ip link set lo up
}

# in_island COMMAND... : runs COMMAND inside the island. A process to keep (and kill) is
# started with `ip netns exec` itself, which execs it: a backgrounded function would leave the
# pid of a subshell.
in_island() { ip netns exec "$PART_NS" "$@"; }

partition_cut() { ip link set "$PART_LINK-h" down; }
partition_heal() { ip link set "$PART_LINK-h" up; }

partition_remove() {
  [ -n "${PART_NS:-}" ] || return 0
  ip route del blackhole "$PART_NET" metric 100 2>/dev/null || true
  ip link del "$PART_LINK-h" 2>/dev/null || true
  ip netns del "$PART_NS" 2>/dev/null || true
}

# partition_cluster KEY [REDIS-SERVER ARGS...] : three masters with one replica each, built by
# hand so that the master serving KEY's slot (ISLAND_PORT) runs in the island; its replica and
# the rest run on the root side. Returns once the cluster is ok and every replica in sync.
# Protected mode is off: the nodes talk over the pair's private addresses, not loopback.
partition_cluster() {
  local key=$1 port i slot third ids=() buses=()
  shift
  REDIS_NODES=()
  for i in 0 1 2 3 4 5; do
    port=$(free_port)
    buses+=("$(free_port)")
    mkdir -p "$STACK_DIR/node-$port"
    local common=(--port "$port" --cluster-port "${buses[-1]}" --dir "$STACK_DIR/node-$port" --save ""
      --cluster-enabled yes --cluster-node-timeout 2000 --protected-mode no "$@")
    if [ "$i" = 0 ]; then
      NODE_HOST[$port]=$PART_ISLAND
      printf '%q ' ip netns exec "$PART_NS" redis-server "${common[@]}" --bind "$PART_ISLAND" \
        --cluster-announce-ip "$PART_ISLAND" >"$STACK_DIR/node-$port/command"
      stack_restart_node "$port"
    else
      NODE_HOST[$port]=$PART_HOST
      stack_node "$port" "${common[@]}" --bind 127.0.0.1 "$PART_HOST" --cluster-announce-ip "$PART_HOST"
    fi
    REDIS_NODES+=("$port")
    ids+=("$(node_cli "$port" CLUSTER MYID)")
  done
  for i in 1 2 3 4 5; do
    [ "$(node_cli "${REDIS_NODES[0]}" CLUSTER MEET "$(node_host "${REDIS_NODES[$i]}")" "${REDIS_NODES[$i]}" "${buses[$i]}")" = OK ] ||
      { echo "CLUSTER MEET of port ${REDIS_NODES[$i]} failed (logs in $STACK_DIR)" >&2; exit 1; }
  done
  for port in "${REDIS_NODES[@]}"; do
    wait_until "node $port to know the five others" 20 bash -c \
      "redis-cli -h $(node_host "$port") -p $port CLUSTER INFO | grep -q cluster_known_nodes:6"
  done
  # Master i serves the third of the slots i places after the one KEY falls in.
  slot=$(node_cli "${REDIS_NODES[1]}" CLUSTER KEYSLOT "$key")
  third=$((slot / 5462))
  for i in 0 1 2; do
    local t=$(((third + i) % 3))
    node_cli "${REDIS_NODES[$i]}" CLUSTER ADDSLOTSRANGE $((t * 5462)) $((t == 2 ? 16383 : t * 5462 + 5461)) >/dev/null
    node_cli "${REDIS_NODES[$((i + 3))]}" CLUSTER REPLICATE "${ids[$i]}" >/dev/null
  done
  for port in "${REDIS_NODES[@]}"; do
    wait_until "cluster_state:ok on $port" 30 bash -c \
      "redis-cli -h $(node_host "$port") -p $port CLUSTER INFO | grep -q cluster_state:ok"
  done
  for port in "${REDIS_NODES[@]:3}"; do
    wait_until "replica $port in sync" 60 bash -c "redis-cli -p $port INFO replication | grep -q master_link_status:up"
  done
  ISLAND_PORT=${REDIS_NODES[0]}
  REDIS_PORT=${REDIS_NODES[1]}
  REDIS_MODE=cluster
}

# partition_worker NAME SINK_DUMP : a worker in the island, relaying to an SMTP sink of its own
# there (the island keeps its mail path: only Redis is cut off).
partition_worker() {
  local sink metrics
  sink=$(free_port) metrics=$(free_port)
  ip netns exec "$PART_NS" "$BIN/sluice-sink" --listen "127.0.0.1:$sink" --every 1 --dump "$2" >"$STACK_DIR/island-sink.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=(island-sink); ISLAND_SINK_PID=$!
  wait_until "the island's SMTP sink" 10 in_island bash -c "exec 3<>/dev/tcp/127.0.0.1/$sink"
  sed "s|^port = $SINK_PORT\$|port = $sink|" "$CONFIG" >"$STACK_DIR/island.toml"
  SLUICE__WORKER__NAME="$1" SLUICE__METRICS__LISTEN="127.0.0.1:$metrics" \
    ip netns exec "$PART_NS" "$BIN/sluice-worker" --config "$STACK_DIR/island.toml" >>"$STACK_DIR/$1.log" 2>&1 &
  STACK_PIDS+=($!); STACK_NAMES+=("$1")
}
