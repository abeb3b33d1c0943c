#!/usr/bin/env bash
# Builds eventbus and eventbus-ctl (Release) and runs the daemon on its embedded default.
# Extra arguments are passed to the daemon, e.g. scripts/run.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=Release -DEBUS_BUILD_TESTS=OFF
cmake --build build/release --target eventbus eventbus-ctl
exec build/release/apps/eventbus/eventbus "$@"
