#!/usr/bin/env bash
# scripts/build.sh [BUILD_DIR] [cmake args...] — configures and builds cispo (CPU build by default).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${1:-$root/build}; shift || true
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=OFF "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
