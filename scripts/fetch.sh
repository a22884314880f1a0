#!/usr/bin/env bash
# Fetches every crate that the server and the web client (wasm32) need, so that the builds
# after it can run offline: `trunk build --offline` fails on a fresh machine otherwise.
# Quick when everything is already in the cargo home.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fetch --locked
