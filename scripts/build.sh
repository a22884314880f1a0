#!/usr/bin/env bash
# Builds the web client (dist/) and the `lookout` binary that embeds it.
#   scripts/build.sh          release binary (target/release/lookout)
#   scripts/build.sh --debug  debug binary (target/debug/lookout), for development
set -euo pipefail
cd "$(dirname "$0")/.."
# wasm-opt from the npm package binaryen: Debian's is too old for today's wasm.
export PATH="$PWD/end2end/node_modules/.bin:$HOME/.cargo/bin:$PATH"
echo "[build] web client (trunk)"
trunk build --release --offline --skip-version-check
# A gzipped copy of each hashed asset, which the server sends to browsers that take gzip
# (server/src/assets.rs): the wasm goes over the wire at about a third of its size.
for f in dist/*.wasm dist/*.js dist/*.css; do
  if [ -e "$f" ]; then gzip -9 -n -k -f "$f"; fi
done
if [ "${1:-}" = "--debug" ]; then
  echo "[build] lookout (debug)"
  cargo build -p lookout
else
  echo "[build] lookout (release)"
  cargo build --release -p lookout
fi
