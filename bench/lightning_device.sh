#!/usr/bin/env bash
# bench/lightning_device.sh [bench args] — on the GPU machine, from the repo root: builds the GPU
# test table's lightning rows (tests/test_backend_ops.c --backend cuda), then runs bench/lightning_bench.py with FLA installed
# from the carried wheels. Logs go to $OUT (the device tool's output folder) or /tmp/lightning-out.
# Device call: carry [".devdeps", ".whl"], command `bash bench/lightning_device.sh [--quick]`.
# SKIP_TEST=1 skips the build and test; SKIP_BENCH=1 the benchmark.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${OUT:-/tmp/lightning-out}
mkdir -p "$out"
source .devdeps/unpack.sh >/dev/null
# libmicrohttpd.pc lists gnutls under Requires.private and the machine has no gnutls.pc; shared
# linking never needs it, so an empty one lets pkg-config (and the project's CMake) accept it.
if ! pkg-config --exists gnutls 2>/dev/null; then
  mkdir -p /tmp/pcstub && printf 'Name: gnutls\nDescription: stub\nVersion: 3.8\n' >/tmp/pcstub/gnutls.pc
  export PKG_CONFIG_PATH=$PKG_CONFIG_PATH:/tmp/pcstub
fi
# some carried .pc files name /usr/include/... literally (cjson): point them at the unpacked tree
for pc in $(find /opt/devdeps -name '*.pc' 2>/dev/null); do
  sed -i -E 's#^(includedir|libdir)=/usr/#\1=/opt/devdeps/usr/#' "$pc"
done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,power.draw,temperature.gpu --format=csv
if [ "${SKIP_TEST:-0}" != 1 ]; then
  # the lightning rows of the op table (tests/test_backend_ops.c) on the GPU against the CPU reference
  if cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
     cmake --build build-gpu -j16 --target test_backend_ops >"$out/build.log" 2>&1; then
    timeout "${TEST_TIMEOUT:-300}" build-gpu/tests/test_backend_ops --require-cuda --backend cuda \
      --op lightning_forward,lightning_backward,lightning_decode >"$out/test.log" 2>&1
    echo "test exit: $?"
  else
    echo "CMake build failed:"; grep -hE "error|Error" "$out"/cmake.log "$out"/build.log | head -5
  fi
  grep -E "ok  |FAIL|done|device:|checks|tests passed|Failed|error" "$out/test.log" | sed 's/^[0-9]*: //' | tail -70
fi
[ "${SKIP_BENCH:-0}" = 1 ] && exit 0
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 timeout "${BENCH_TIMEOUT:-360}" python3 bench/lightning_bench.py "$@" 2>&1 |
  tee "$out/bench.log" | grep -vE "Warning|warn"
