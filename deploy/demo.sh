#!/usr/bin/env bash
# make demo: runs the main job on the embedded default (herdd with local
# workers on loopback). Usage: deploy/demo.sh BUILD_DIR DATA_DIR
set -euo pipefail
build=${1:-build}
data=${2:-demo-data}
if [[ ! -x "$build/demo/herd-demo" ]]; then
  echo "demo: not built yet. The six-round demo arrives with the demo issue;"
  echo "      today's build has: $(ls "$build"/daemon/herdd "$build"/workers/herd-worker "$build"/api/herdctl 2>/dev/null | xargs -n1 basename | tr '\n' ' ')"
  "$build/daemon/herdd" --version
  exit 0
fi
exec "$build/demo/herd-demo" --build-dir "$build" --data-dir "$data"
