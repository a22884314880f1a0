#!/usr/bin/env bash
# start PIDFILE: makes sure a Docker engine answers. If none does, starts dockerd in the
#                background and writes its pid to PIDFILE; if one does, leaves PIDFILE absent.
# stop PIDFILE:  stops the dockerd whose pid is in PIDFILE (the one `start` started), if any.
set -euo pipefail
cmd="${1:-}"
pidfile="${2:-}"
if [ -z "$pidfile" ]; then
  echo "usage: $0 start|stop PIDFILE" >&2
  exit 2
fi
mkdir -p "$(dirname "$pidfile")"
log="${pidfile%.pid}.log"

case "$cmd" in
  start)
    rm -f "$pidfile"
    if docker info >/dev/null 2>&1; then
      echo "[engine] a Docker engine already answers"
      exit 0
    fi
    echo "[engine] starting dockerd (log: $log)"
    # setsid: the engine is its own process group, stopped by its pid in `stop`.
    setsid dockerd --bridge=none --iptables=false --ip-masq=false \
      >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    for _ in $(seq 1 120); do
      if docker info >/dev/null 2>&1; then
        echo "[engine] dockerd answers (pid $(cat "$pidfile"))"
        exit 0
      fi
      sleep 0.5
    done
    echo "[engine] dockerd did not answer within 60 s; see $log" >&2
    tail -20 "$log" >&2 || true
    exit 1
    ;;
  stop)
    [ -f "$pidfile" ] || exit 0
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
    ;;
  *)
    echo "usage: $0 start|stop PIDFILE" >&2
    exit 2
    ;;
esac
