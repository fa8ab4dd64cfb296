#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) under libFuzzer for SECONDS each (default 20),
# starting from the corpus kept in fuzz/corpus. What a run finds new goes to a scratch corpus
# under the target dir, so the repository is never changed; a crash fails the script and
# leaves its input in fuzz/artifacts/TARGET/ (replay: cargo fuzz run TARGET FILE).
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz from crates.io when it is missing. Builds on the stable toolchain, with
# no sanitizer (the code forbids unsafe), optimised, with the debug assertions and overflow
# checks that fuzz/Cargo.toml's profile turns on.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/install.sh
source scripts/lib/args.sh
args_check 64 "$@"
SECONDS_EACH=${1:-20}
count_arg SECONDS "$SECONDS_EACH" 1 86400
shift || true
for target in "$@"; do
  [ -f "fuzz/fuzz_targets/$target.rs" ] || usage_error "no fuzz target \"$target\" (fuzz/fuzz_targets)"
done
ensure_cargo_fuzz

TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
targets=("$@")
[ ${#targets[@]} -eq 0 ] && mapfile -t targets < <(cd fuzz && cargo fuzz list)
fuzz() { (cd fuzz && cargo fuzz "$1" -O --sanitizer none --target-dir "$TARGET_DIR" "${@:2}"); }

echo "== fuzz: building ${targets[*]}"
fuzz build
for target in "${targets[@]}"; do
  scratch="$TARGET_DIR/corpus/$target"
  mkdir -p "$scratch"
  echo "== fuzz: $target for ${SECONDS_EACH}s"
  log="$TARGET_DIR/$target.log"
  # -rss_limit_mb: every parser must stay far below it on any input.
  status=0
  fuzz run "$target" "$scratch" "corpus/$target" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|panicked|ERROR|SUMMARY|artifact' "$log" || true
  [ "$status" -eq 0 ] || { echo "fuzz target $target failed (log: $log); its input is in fuzz/artifacts/$target/"; exit 1; }
done
