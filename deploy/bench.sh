#!/usr/bin/env bash
# make bench: runs every benchmark under BUILD/bench and prints its figures.
# bench_tokenize also measures HF tokenizers on the same input when
# HERD_BENCH_PYTHON names a python that has `tokenizers` (optional).
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
echo "bench: ran $ran benchmark(s)"
