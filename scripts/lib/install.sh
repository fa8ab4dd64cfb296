# Shared by the scripts: install what is missing, never what is there.

# ensure_debian_packages PKG... : apt-get installs the packages whose commands are missing.
ensure_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    case "$pkg" in
      redis-server) command -v redis-server >/dev/null || missing+=(redis-server) ;;
      redis-tools) command -v redis-cli >/dev/null || missing+=(redis-tools) ;;
      postfix) command -v smtp-sink >/dev/null || missing+=(postfix) ;;
      postgresql) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql) ;;
      *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "== installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_nextest : cargo-nextest, from crates.io if the toolchain lacks it.
ensure_nextest() {
  cargo nextest --version >/dev/null 2>&1 || cargo install cargo-nextest --locked
}

# ensure_promtool : sets PROMTOOL to Prometheus's rule checker. It comes from Debian's
# prometheus package, unpacked (not installed) into the target dir's tools/, so no Prometheus server is
# installed or started on this machine.
ensure_promtool() {
  if command -v promtool >/dev/null; then PROMTOOL=$(command -v promtool); return; fi
  local dir=${CARGO_TARGET_DIR:-target}/tools/prometheus
  if [ ! -x "$dir/usr/bin/promtool" ]; then
    echo "== fetching promtool (Debian package prometheus, unpacked into $dir)"
    mkdir -p "$dir"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    (cd "$dir" && apt-get download prometheus >/dev/null && dpkg-deb -x prometheus_*.deb . && rm -f prometheus_*.deb)
  fi
  PROMTOOL="$(cd "$dir" && pwd)/usr/bin/promtool"
}

# free_port : a TCP port on 127.0.0.1 that is free right now, below the kernel's ephemeral
# range so that no outgoing connection can be holding it, and never one this script was
# given before (two ports picked before either listens, an API's and a listener's, once
# came out the same). Called as $(free_port), so the ports given are kept in a file.
free_port() {
  local port low given="${TMPDIR:-/tmp}/sluice-ports.$$"
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  while :; do
    port=$(( RANDOM % (low - 20000) + 20000 ))
    grep -qx "$port" "$given" 2>/dev/null && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port" >>"$given"; echo "$port"; return; }
  done
}

# ensure_cargo_fuzz : cargo-fuzz (libFuzzer driver), from crates.io if missing.
ensure_cargo_fuzz() {
  cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
}
