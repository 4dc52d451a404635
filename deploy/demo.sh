#!/usr/bin/env bash
# make demo: runs the main job on the embedded default (herdd with local
# workers on loopback), six rounds on a tiny model. Usage:
#   deploy/demo.sh BUILD_DIR DATA_DIR [herd-demo options...]
set -euo pipefail
build=${1:-build}
data=${2:-demo-data}
shift 2 || true
exec "$build/demo/herd-demo" --build-dir "$build" --data-dir "$data" "$@"
