#!/usr/bin/env bash
# scripts/gpu_tests.sh — on a GPU machine: builds with CUDA and runs the tests labelled gpu (every op
# on CUDA against the CPU reference, the whole model on the GPU against the CPU model, the generation
# engine on the GPU against the CPU engine and the GPU training forward, a short device=cuda training
# run). The generation benchmark is bench/generate_device.sh. Logs under $OUT (or /tmp/gpu_tests). Exit status: ctest's.
set -uo pipefail
out=${OUT:-/tmp/gpu_tests}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 || { tail -20 "$out/cmake.log"; exit 1; }
cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -20; exit 1; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
ctest --test-dir build-gpu -L gpu --output-on-failure "$@" 2>&1 | tee "$out/ctest.log"
exit "${PIPESTATUS[0]}"
