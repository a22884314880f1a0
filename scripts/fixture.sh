#!/usr/bin/env bash
# up PROJECT:   builds the fixture image FROM scratch and starts the fixture as Compose project PROJECT.
# down PROJECT: removes that project's containers.
set -euo pipefail
cd "$(dirname "$0")/../end2end/fixture"
project="${2:-lookout-demo}"

case "${1:-}" in
  up)
    cp /bin/busybox image/busybox
    docker build -q -t lookout-fixture:latest image >/dev/null
    docker-compose -p "$project" up -d --remove-orphans --force-recreate 2>&1 | grep -v '^$' || true
    # Compose v1 exits 0 even if a container failed to start: check every service has one.
    for svc in $(docker-compose -p "$project" config --services); do
      if [ -z "$(docker-compose -p "$project" ps -q "$svc")" ]; then
        echo "[fixture] service $svc has no container" >&2
        exit 1
      fi
    done
    echo "[fixture] project $project is up"
    ;;
  down)
    docker-compose -p "$project" down -t 2 --remove-orphans >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 up|down [PROJECT]" >&2
    exit 2
    ;;
esac
