#!/usr/bin/env bash
# Builds Lookout and runs it with the demo Compose project (lookout-demo) to look at.
# Installs what is missing, starts a Docker engine if none answers, and on exit stops
# the demo and any engine it started.
#   LOOKOUT_LISTEN=127.0.0.1:8080  where to serve (default)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
engine_pid="$PWD/target/lookout-state/run-dockerd.pid"
bash scripts/engine.sh start "$engine_pid"
cleanup() {
  bash scripts/fixture.sh down lookout-demo
  bash scripts/engine.sh stop "$engine_pid"
}
trap cleanup EXIT
bash scripts/fixture.sh up lookout-demo
bash scripts/build.sh
listen="${LOOKOUT_LISTEN:-127.0.0.1:8080}"
echo
echo "Lookout: open http://$listen/ (Ctrl+C stops it, the demo project and any engine started here)"
echo
# History (7 days, 2 GiB at most) is kept here, and survives runs.
target/release/lookout --listen "$listen" --data-dir target/lookout-history &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
wait $pid || true
