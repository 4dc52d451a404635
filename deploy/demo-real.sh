#!/usr/bin/env bash
# make demo-real: the loop on a real instruct model on the CPU:
# SmolLM2-135M-Instruct (fetched by deploy/fetch-real-model.sh, imported by
# herd-model), two rounds of configs/smollm2-135m.json on single-digit
# addition, answered "with the number only" (docs/demo.md). Usage:
#   deploy/demo-real.sh BUILD_DIR DATA_DIR [herd-demo options...]
set -euo pipefail
build=${1:-build}
data=${2:-demo-data-real}
shift 2 || true
here=$(cd "$(dirname "$0")/.." && pwd)
gguf=$("$here/deploy/fetch-real-model.sh")
base="$data/smollm2-135m-instruct"
mkdir -p "$data"
if [[ ! -f "$base/config.json" ]]; then
  "$build/workers/herd-model" import "$gguf" "$base"
fi
exec "$build/demo/herd-demo" --build-dir "$build" --data-dir "$data" --base "$base" \
  --config "$here/configs/smollm2-135m.json" --prompt-suffix " Answer with the number only." \
  --workers 1 "$@"
