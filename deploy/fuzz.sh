#!/usr/bin/env bash
# Fuzzes herd's parsers of outside input with libFuzzer (fuzz/targets.h):
# builds herd-fuzz with clang, ASan and UBSan in build-fuzz/, then runs each
# target for SECONDS (default 300) on its corpus in fuzz/corpus/<target>/,
# which libFuzzer grows with inputs that reach new code (merged back to a
# minimal set after each run). A crash leaves its
# input in fuzz/crashers/<target>/; check it in: tests/fuzz replays every
# corpus and crasher file in each test run. Outside CI (minutes per target).
#   deploy/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-300}
shift || true
build=build-fuzz
if [[ ! -f $build/build.ninja ]]; then
  CC=clang CXX=clang++ cmake -S . -B $build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DHERD_FUZZ=ON -DHERD_CUDA=OFF -DHERD_BUILD_TESTS=OFF -DHERD_BUILD_BENCH=OFF >/dev/null
fi
cmake --build $build --target herd-fuzz
targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(ls fuzz/corpus)
fi
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/crashers/$t"
  echo "== $t: $secs s"
  log=$(mktemp)
  if HERD_FUZZ_TARGET=$t "$build/fuzz/herd-fuzz" "fuzz/corpus/$t" -max_total_time="$secs" \
       -max_len=65536 -timeout=10 -rss_limit_mb=4096 -artifact_prefix="fuzz/crashers/$t/" \
       -print_final_stats=1 >"$log" 2>&1; then
    grep -E "stat::number_of_executed_units|stat::new_units_added|stat::peak_rss_mb" "$log" | tr '\n' ' '
    echo
  else
    tail -40 "$log"
    echo "fuzz: $t found a crash; its input is in fuzz/crashers/$t/" >&2
  fi
  rm -f "$log"
  # Keep the corpus minimal: only inputs that add coverage (the seeds,
  # named by hand, always stay).
  merged=$(mktemp -d)
  HERD_FUZZ_TARGET=$t "$build/fuzz/herd-fuzz" -merge=1 -max_len=65536 -timeout=10 \
    "$merged" "fuzz/corpus/$t" >/dev/null 2>&1 || true
  if [[ -n $(ls -A "$merged") ]]; then
    find "fuzz/corpus/$t" -type f -regextype posix-extended -regex '.*/[0-9a-f]{40}' -delete
    cp -n "$merged"/* "fuzz/corpus/$t/"
  fi
  rm -rf "$merged"
  echo "   corpus: $(ls "fuzz/corpus/$t" | wc -l) files"
done
