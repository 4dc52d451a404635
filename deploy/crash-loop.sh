#!/usr/bin/env bash
# The long crash loop (issue 17): a three-round run on real herdd and
# herd-worker processes while herdd is SIGKILLed 20 times and workers 20
# times at random moments, restarted on the same data dir and port; an
# uploader and an annotator keep going through the kills. Prints every kill
# and the checks (docs/robustness.md). Usage:
#   deploy/crash-loop.sh [BUILD_DIR] [herd-chaos options...]
# e.g. deploy/crash-loop.sh build --herdd-kills 50 --worker-kills 50 --rounds 4
set -euo pipefail
build=${1:-build}
shift || true
cmake --build "$build" --target herd-chaos herdd herd-worker >/dev/null
exec "$build/tests/herd-chaos" --build-dir "$build" "$@"
