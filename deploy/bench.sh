#!/usr/bin/env bash
# make bench: runs every benchmark under BUILD/bench and prints its figures.
# bench_tokenize also measures HF tokenizers on the same input when
# HERD_BENCH_PYTHON names a python that has `tokenizers` (optional); the
# load run at the end needs wrk (optional too).
set -euo pipefail
build=${1:-build}
shopt -s nullglob
ran=0
for b in "$build"/bench/*/bench_* "$build"/bench/bench_*; do
  [[ -x "$b" && -f "$b" ]] || continue
  echo "== $(basename "$b")"
  "$b"
  ran=$((ran + 1))
done
# The load run (bench/load/run.sh): 64 clients for 60 s against a real
# herdd; needs wrk and the load_base_model target. HERD_BENCH_LOAD=0 skips it.
if [[ "${HERD_BENCH_LOAD:-1}" != 0 ]]; then
  if command -v wrk >/dev/null && [[ -x "$build/bench/load/load_base_model" ]]; then
    echo "== load (bench/load/run.sh)"
    "$(dirname "$0")/../bench/load/run.sh" "$build"
    ran=$((ran + 1))
  else
    echo "== load: skipped (needs wrk and $build/bench/load/load_base_model)"
  fi
fi
echo "bench: ran $ran benchmark(s)"
