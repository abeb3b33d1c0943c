#!/usr/bin/env bash
# Builds everything with warnings as errors and runs the whole test suite
# (unit, conformance, integration, fuzz corpus replays).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build/test -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEBUS_WERROR=ON
cmake --build build/test
ctest --test-dir build/test --output-on-failure --parallel "$(nproc)" --timeout 300
