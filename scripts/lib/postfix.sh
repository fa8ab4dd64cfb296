# A stock Postfix relay of its own for the side-by-side benchmark: its own config and queue
# under a temporary directory, listening on 127.0.0.1 only, on a free port, relaying
# everything to an SMTP sink on 127.0.0.1. The system's Postfix configuration is not touched.
# Needs root (Postfix's master runs as root and drops to the postfix user).

# postfix_start_relay SINK_PORT : starts it; sets PF_DIR and PF_PORT.
postfix_start_relay() {
  PF_DIR=$(mktemp -d -t sluice-postfix.XXXXXX)
  PF_PORT=$(free_port)
  mkdir -p "$PF_DIR/queue" "$PF_DIR/data"
  chown postfix "$PF_DIR/data"
  cp /etc/postfix/master.cf "$PF_DIR/"
  cat >"$PF_DIR/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.localhost
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$1
smtp_host_lookup = native
smtp_dns_support_level = disabled
alias_maps =
alias_database =
maillog_file_prefixes = $PF_DIR
maillog_file = $PF_DIR/maillog
CF
  # The only listener: our port on loopback, and no chroot (the queue is outside any jail).
  sed -i -E "s/^smtp +inet .*smtpd$/127.0.0.1:$PF_PORT inet n - n - - smtpd/" "$PF_DIR/master.cf"
  postconf -c "$PF_DIR" -F '*/*/chroot = n'
  postfix -c "$PF_DIR" set-permissions >/dev/null 2>&1 || true
  postfix -c "$PF_DIR" start >/dev/null 2>&1 || { echo "Postfix did not start; see $PF_DIR/maillog" >&2; return 1; }
  wait_until "Postfix relay" 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PF_PORT"
}

postfix_stop_relay() {
  [ -n "${PF_DIR:-}" ] && postfix -c "$PF_DIR" stop >/dev/null 2>&1 || true
}

# smtp_sink_start : Postfix's smtp-sink on a free port (SINK_PORT, SINK_PID), logging to
# $STACK_DIR/smtp-sink.out, which sink_count reads.
smtp_sink_start() {
  SINK_PORT=$(free_port)
  smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1024 >"$STACK_DIR/smtp-sink.out" 2>&1 &
  SINK_PID=$!
  wait_until "smtp-sink" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$SINK_PORT"
}

# sink_count : messages smtp-sink has accepted so far.
sink_count() {
  local n
  n=$(tail -c 400 "$STACK_DIR/smtp-sink.out" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2 || true)
  echo "${n:-0}"
}

# postfix_bench_setup : what a benchmark beside Postfix needs: the package, Postfix's
# smtp-sink started, and an EXIT trap that stops the sink, the relay and the stack.
postfix_bench_setup() {
  ensure_debian_packages postfix
  trap postfix_bench_cleanup EXIT
  smtp_sink_start
}

postfix_bench_cleanup() {
  kill "${SINK_PID:-}" 2>/dev/null || true
  postfix_stop_relay
  stack_stop
}
