#!/usr/bin/env bash
# Installs what the tests need when it is missing, then runs every check and test:
# formatting, clippy (warnings are errors), the unit tests and the integration tests that run
# the real binaries against their own redis-server and SMTP sink on 127.0.0.1; before them,
# the admin API under schemathesis and each fuzz target briefly.
#   scripts/test.sh [NEXTEST_ARGS...]   passed to every cargo nextest run, e.g. -E 'test(webhook)'
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/args.sh
args_check 1000 "$@"
source scripts/lib/install.sh

# redis-server for every test (redis-cli joins the test clusters); PostgreSQL for the history tests (each
# initdb's its own server on a free port; the package's own cluster is never used); swaks (with the Perl TLS modules
# it only recommends, for STARTTLS) and Postfix (with the SASL client modules) are the submission tests' real clients;
# openssl makes DKIM keys; dkimpy (python3-dkim, python3-nacl for
# Ed25519) is the independent DKIM verifier; Debian's Chromium and ChromeDriver show the unsubscribe page in a real
# headless browser.
ensure_debian_packages redis-server redis-tools postgresql openssl libssl-dev pkg-config python3-dkim python3-nacl swaks libnet-ssleay-perl libio-socket-ssl-perl postfix libsasl2-modules chromium chromium-driver
ensure_nextest
ensure_promtool

echo "== alert rules and dashboard queries (promtool)"
"$PROMTOOL" check rules grafana/alerts/sluice.rules.yml
(cd grafana/alerts && "$PROMTOOL" test rules sluice.tests.yml)
# Every dashboard query must be valid PromQL: load them all as recording rules.
TOOLS=${CARGO_TARGET_DIR:-target}/tools
mkdir -p "$TOOLS"
python3 scripts/lib/dashboard_rules.py grafana/dashboards >"$TOOLS/dashboard-queries.rules.yml"
"$PROMTOOL" check rules "$TOOLS/dashboard-queries.rules.yml"

echo "== cargo fmt --check"
cargo fmt --all -- --check
(cd fuzz && cargo fmt -- --check)
echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "== build (the integration tests spawn these binaries)"
cargo build --workspace --all-features
# The admin API under schemathesis, driven by its own OpenAPI document (bounded in examples and time).
echo "== admin API under generated input (schemathesis)"
bash scripts/api-fuzz.sh 20 180
# Every parser a stranger or a key holder feeds, under libFuzzer for a few seconds each.
echo "== fuzz targets"
bash scripts/fuzz.sh 10
echo "== tests"
cargo nextest run --workspace --all-features --no-fail-fast "$@"
# The end-to-end suite (campaigns, chaos, retries, events, webhooks...) and the scheduler's API
# suite (intake, suppressions, templates, audit...) again, each test on its own three-master
# Redis Cluster instead of one redis-server. The million-line import measures the scheduler's
# memory, which the cluster does not change: once is enough.
echo "== tests on Redis Cluster"
SLUICE_TEST_REDIS=cluster cargo nextest run -p sluice-e2e -p sluice-scheduler --all-features --no-fail-fast \
    -E 'not test(a_million_line_import_streams_at_bounded_memory)' "$@"
# On one master with one replica behind three sentinels (quorum 2): the suites where finding
# the master, losing it and waiting for the replica matter (the Redis deployments, crash and
# restart, delivery end to end). Past the connection Sentinel runs single-server code, which
# the first suite covers; the whole suite again cost CI ~8 minutes.
echo "== tests on Redis Sentinel"
SLUICE_TEST_REDIS=sentinel cargo nextest run -p sluice-e2e --all-features --no-fail-fast \
    -E 'binary(redis_deploy) | binary(reliability) | binary(delivery)' "$@"
# A master killed with -9 under a campaign on each deployment with replicas, then started again
# (it rejoins as a replica) and its successor killed too (short: 20,000 recipients, the debug
# binaries); and the campaign's master cut off with one worker in a network namespace of
# their own (root). Each completes with every recipient delivered and counted once.
echo "== failover under a campaign"
STACK_BIN=${CARGO_TARGET_DIR:-target}/debug bash scripts/chaos-failover.sh cluster 20000 twice
STACK_BIN=${CARGO_TARGET_DIR:-target}/debug bash scripts/chaos-failover.sh sentinel 20000 twice
STACK_BIN=${CARGO_TARGET_DIR:-target}/debug bash scripts/chaos-failover.sh cluster 20000 partition
