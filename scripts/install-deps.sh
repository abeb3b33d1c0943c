#!/usr/bin/env bash
# Installs every Debian package eventbus needs to build, test, fuzz and benchmark.
# Idempotent: installs only what is missing. Needs root (or sudo).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  clang clang-format clang-tidy libclang-rt-14-dev
  # libraries
  libasio-dev libexpected-dev nlohmann-json3-dev libsimdjson-dev libyaml-cpp-dev libspdlog-dev
  libxxhash-dev libcli11-dev libsqlite3-dev libssl-dev libmosquitto-dev libwslay-dev libhttp-parser-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # test and comparison peers
  mosquitto mosquitto-clients python3 python3-paho-mqtt sqlite3 openssl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
