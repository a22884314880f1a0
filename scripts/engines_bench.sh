#!/usr/bin/env bash
# Two-engine benchmark (end2end/bench/engines.mjs): the machine's engine and a private
# dockerd of this script's own (own socket, data root and exec root in a temporary folder;
# no bridge, no iptables), 50 containers on each writing about 100 lines/s, and one lookout
# reading both. Prints lookout's CPU and RSS and the time from a line to a browser, per
# engine. Must run as root (it starts dockerd); stops what it started, by pid.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
project=ebench
containers=${ENGINES_BENCH_CONTAINERS:-50}

bash scripts/setup.sh
# Built before the writers start: a build under 100 writers takes far longer.
bash scripts/build.sh >/dev/null
engine_pid="$PWD/target/lookout-state/engines-bench-dockerd.pid"
bash scripts/engine.sh start "$engine_pid"
dir=$(mktemp -d /tmp/lookout-engines-bench-XXXXXX)
second="unix://$dir/docker.sock"
cleanup() {
  for host in "" "-H $second"; do
    # shellcheck disable=SC2086
    ids=$(docker $host ps -aq --filter "label=com.docker.compose.project=$project" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || docker $host rm -f $ids >/dev/null 2>&1 || true
  done
  if [ -f "$dir/dockerd.pid" ]; then
    # Read once: dockerd removes its pid file as it ends.
    pid=$(cat "$dir/dockerd.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  grep -o " $dir[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$dir"
  bash scripts/engine.sh stop "$engine_pid"
}
trap cleanup EXIT

setsid dockerd --host "$second" --data-root "$dir/data" --exec-root "$dir/exec" \
  --pidfile "$dir/dockerd.pid" --bridge=none --iptables=false --ip-masq=false \
  >"$dir/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 120); do docker -H "$second" info >/dev/null 2>&1 && break; sleep 0.5; done
docker -H "$second" info >/dev/null

# The fixture image in both engines, from scratch and the local busybox: nothing is pulled.
cp -r end2end/fixture/image "$dir/image"
cp /bin/busybox "$dir/image/busybox"
docker build -q -t lookout-fixture:latest "$dir/image" >/dev/null
docker -H "$second" build -q -t lookout-fixture:latest "$dir/image" >/dev/null

# Ten lines every 100 ms: one sleep (a process) per ten lines keeps 100 writers from
# costing the machine more than the reading does.
writer='i=0; while :; do for _ in 1 2 3 4 5 6 7 8 9 10; do i=$((i+1)); echo "line $i"; done; usleep 100000; done'
for host in "" "-H $second"; do
  for n in $(seq 1 "$containers"); do
    # shellcheck disable=SC2086
    docker $host run -d --network none --label "com.docker.compose.project=$project" \
      --label "com.docker.compose.service=w$n" --label com.docker.compose.container-number=1 \
      lookout-fixture:latest sh -c "$writer" >/dev/null
  done
done
(cd end2end && ENGINES_BENCH_B="$second" ENGINES_BENCH_PROJECT="$project" \
  LOOKOUT_BIN="$PWD/../target/release/lookout" node bench/engines.mjs)
