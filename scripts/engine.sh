#!/usr/bin/env bash
# start: makes sure a Docker engine answers, starting dockerd in the background if none does.
#        Prints nothing else; records the pid of a dockerd it started in $LOOKOUT_STATE/dockerd.pid.
# stop:  stops the dockerd that `start` started (by its pid), and nothing else.
set -euo pipefail
state="${LOOKOUT_STATE:-$(cd "$(dirname "$0")/.." && pwd)/target/lookout-state}"
mkdir -p "$state"
pidfile="$state/dockerd.pid"

case "${1:-}" in
  start)
    if docker info >/dev/null 2>&1; then
      echo "[engine] a Docker engine already answers"
      exit 0
    fi
    echo "[engine] starting dockerd (log: $state/dockerd.log)"
    # setsid: the engine must outlive this script but is stopped by pid in `stop`.
    setsid dockerd --bridge=none --iptables=false --ip-masq=false \
      >"$state/dockerd.log" 2>&1 < /dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 60); do
      if docker info >/dev/null 2>&1; then
        echo "[engine] dockerd answers (pid $(cat "$pidfile"))"
        exit 0
      fi
      sleep 0.5
    done
    echo "[engine] dockerd did not answer within 30 s; see $state/dockerd.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then
        echo "[engine] stopping dockerd (pid $pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 60); do
          kill -0 "$pid" 2>/dev/null || break
          sleep 0.5
        done
      fi
      rm -f "$pidfile"
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
