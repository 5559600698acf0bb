#!/usr/bin/env bash
# bench/precision_device.sh — M1's LM-head precision finding on the GPU machine in one call: builds, then
# bench/precision_bench.c (a short SFT of bench-1b on the demo task, rollouts with the fp32 head and with
# bf16 logits, each against the training forward). Pairs for the scatter plot in $OUT/pairs.txt; plot
# them here with bench/precision_plot.py. Extra arguments go to precision_bench (run keys, --samples N).
# Run from the repo root: source .devdeps/unpack.sh && bench/precision_device.sh; logs in $OUT.
set -uo pipefail
out=${OUT:-/tmp/precision_bench}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j16 --target precision_bench >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt"
build-gpu/precision_bench --pairs "$out/pairs.txt" "$@" 2>&1 | tee "$out/precision.log"
exit "${PIPESTATUS[0]}"
