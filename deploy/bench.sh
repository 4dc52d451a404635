#!/usr/bin/env bash
# make bench: runs every benchmark under BUILD/bench and prints its figures.
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
