#!/usr/bin/env bash
# Installs everything herd's build, tests and demo need on Debian 12.
# Idempotent and non-interactive; when every package is already present it
# only runs dpkg-query and exits.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl ca-certificates
  libboost1.81-dev            # Asio + Beast (http::message_generator needs >= 1.80)
  libssl-dev                  # OpenSSL 3: HTTPS in herdd, herd-worker and herdctl (Asio's ssl)
  openssl                     # the CLI: the TLS tests make their certificates with it
  librocksdb-dev              # 7.8.3
  nlohmann-json3-dev
  libopenblas-dev
  libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus                  # promtool + the server for the scrape test
  prometheus-cpp-dev          # 1.0.1: the metrics registry and text serializer (core library)
  wrk                         # bench/load: 64 concurrent clients against a live herdd
  libpcre2-dev                # Unicode regexes (with JIT) for BPE pre-tokenizers
  python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The prometheus package may start a system service; our tests start their own.
if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl disable --now prometheus || true
fi
echo "install-deps: done"
