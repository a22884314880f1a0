#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, integration tests against a real
# Docker engine and Compose project, and Playwright in Debian's Chromium.
# Installs what is missing, starts a Docker engine if none answers, and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
project=lookout-test

bash scripts/setup.sh
engine_pid="$PWD/target/lookout-state/test-dockerd.pid"
bash scripts/engine.sh start "$engine_pid"
cleanup() {
  bash scripts/fixture.sh down "$project"
  bash scripts/engine.sh stop "$engine_pid"
}
trap cleanup EXIT
bash scripts/fixture.sh up "$project"

# What a fresh machine sees, whatever this machine's cargo home holds: from an empty cargo
# home, setup's fetch step must bring every crate that the offline builds need.
echo "[test] a fresh cargo home: the fetch step brings every crate the offline builds need"
fresh_home=$(mktemp -d)
CARGO_HOME="$fresh_home" bash scripts/fetch.sh >/dev/null 2>&1 || {
  echo "[test] scripts/fetch.sh failed in an empty cargo home" >&2
  exit 1
}
for target in wasm32-unknown-unknown "$(rustc -vV | sed -n 's/^host: //p')"; do
  CARGO_HOME="$fresh_home" cargo metadata --offline --locked --format-version 1 \
    --filter-platform "$target" >/dev/null
done
rm -rf "$fresh_home"

# The binary that scripts/run.sh runs (release, the web client embedded), built the same
# way and first, as on a fresh machine: the Playwright tests run against it.
bash scripts/build.sh

echo "[test] cargo fmt --check"
cargo fmt --all --check
echo "[test] clippy (server and shared code)"
cargo clippy --workspace --all-targets -- -D warnings
echo "[test] clippy (web client, wasm32)"
cargo clippy -p app --features csr --target wasm32-unknown-unknown -- -D warnings

# In the release profile, like the binary above: one build of the dependencies, not two,
# and the integration tests run the binary a user runs.
echo "[test] cargo test --release (unit tests, and integration tests against the engine)"
LOOKOUT_TEST_PROJECT="$project" cargo test --release --workspace --no-fail-fast -- --test-threads=4

echo "[test] Playwright (Chromium), against target/release/lookout"
rm -rf target/e2e-history
# A failed test's page, as Playwright saw it at the failure, is printed: a run on a machine
# no one can look at afterwards still says what the page showed.
(cd end2end && LOOKOUT_BIN="$PWD/../target/release/lookout" LOOKOUT_TEST_PROJECT="$project" \
  LOOKOUT_E2E_DATA="$PWD/../target/e2e-history/main" npx playwright test) || {
  for f in end2end/test-results/*/error-context.md; do
    [ -f "$f" ] && { echo "[test] page at the failure: $f"; cat "$f"; }
  done
  exit 1
}
