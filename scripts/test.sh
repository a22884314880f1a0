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

echo "[test] cargo fmt --check"
cargo fmt --all --check
echo "[test] clippy (server and shared code)"
cargo clippy --workspace --all-targets -- -D warnings
echo "[test] clippy (web client, wasm32)"
cargo clippy -p app --features csr --target wasm32-unknown-unknown -- -D warnings

bash scripts/build.sh --debug

echo "[test] cargo test (unit tests, and integration tests against the engine)"
LOOKOUT_TEST_PROJECT="$project" cargo test --workspace -- --test-threads=4

echo "[test] Playwright (Chromium)"
(cd end2end && LOOKOUT_BIN="$PWD/../target/debug/lookout" LOOKOUT_TEST_PROJECT="$project" \
  npx playwright test)
