#!/usr/bin/env bash
# bench/lightning_device.sh [bench args] — on the GPU machine, from the repo root: builds the GPU
# test with CMake, runs it (ctest label gpu), then runs bench/lightning_bench.py with FLA installed
# from the carried wheels. Logs go to $OUT (the device tool's output folder) or /tmp/lightning-out.
# Device call: carry [".devdeps", ".whl"], command `bash bench/lightning_device.sh [--quick]`.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-/tmp/lightning-out}
mkdir -p "$out"
source .devdeps/unpack.sh >/dev/null
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv
if [ "${SKIP_TEST:-0}" != 1 ]; then
  if cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
     cmake --build build-gpu -j16 --target test_lightning_gpu >"$out/build.log" 2>&1; then
    (cd build-gpu && TEST_VERBOSE=1 timeout "${TEST_TIMEOUT:-300}" ctest -L gpu -R lightning -V) >"$out/test.log" 2>&1
    echo "ctest exit: $?"
    grep -E "ok  |FAIL|done|device:|checks|tests passed|Failed" "$out/test.log" | sed 's/^[0-9]*: //' | tail -60
  else
    echo "build failed:"; grep -E "error" "$out/cmake.log" "$out/build.log" | head -20
  fi
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 timeout "${BENCH_TIMEOUT:-360}" python3 bench/lightning_bench.py "$@" 2>&1 |
  tee "$out/bench.log" | grep -vE "^\{|Warning|warn" 
