#!/usr/bin/env bash
# Runs the viewer benchmark (end2end/bench/viewer.mjs), the streaming benchmark
# (server/examples/stream_bench.rs) and history's (server/examples/history_bench.rs), against a Compose project of its own, and prints their
# tables. Like the tests, it installs what is missing, starts a Docker engine if none answers,
# and stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
project=lookout-bench

bash scripts/setup.sh
engine_pid="$PWD/target/lookout-state/bench-dockerd.pid"
bash scripts/engine.sh start "$engine_pid"
cleanup() {
  bash scripts/fixture.sh down "$project"
  bash scripts/engine.sh stop "$engine_pid"
}
trap cleanup EXIT
bash scripts/fixture.sh up "$project"
bash scripts/build.sh
# Every benchmark's output is kept too, so that the targets are gathered at the end.
out="$PWD/target/lookout-state/bench-out.txt"
: > "$out"
for mix in plain mixed; do
  (cd end2end && LOOKOUT_BIN="$PWD/../target/release/lookout" LOOKOUT_TEST_PROJECT="$project" \
    VIEWER_MIX="$mix" node bench/viewer.mjs) | tee -a "$out"
done
LOOKOUT_BIN="$PWD/target/release/lookout" LOOKOUT_TEST_PROJECT="$project" \
  cargo run --release -q -p lookout --example stream_bench | tee -a "$out"
cargo run --release -q -p lookout --example history_bench
# The client as a browser fetches it: its wasm, JS and CSS, whole and gzipped as served.
whole=0
gzipped=0
for f in dist/*.wasm dist/*.js dist/*.css; do
  whole=$((whole + $(stat -c %s "$f")))
  gzipped=$((gzipped + $(stat -c %s "$f.gz")))
done
limit=400000
met=MISSED
[ "$gzipped" -le "$limit" ] && met=met
echo "client: $whole bytes, $gzipped bytes gzipped as served (target: at most 400 KB gzipped)"
echo "  client <= 400 KB gzipped as served: $gzipped bytes ($met)" >> "$out"
echo
echo "Targets of this run, each as measured above:"
grep -E '\((met|MISSED)\)$' "$out"
