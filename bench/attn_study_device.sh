#!/usr/bin/env bash
# bench/attn_study_device.sh — where the attention kernels' time goes, on the GPU machine in one call: the backward's
# rows with dQ's block layout (the default; CISPO_ATTN_DQ_TILED=1 says so) against the CPU reference, its timing rows
# against the row layout (CISPO_ATTN_DQ_TILED=0; alternated, REPS passes), test_model_gpu and test_train_gpu under it,
# then a second build with -DCISPO_ATTN_ABLATION whose timing rows leave one part of the TMA kernels out at a time
# (CISPO_ATTN_ABLATE's bits, kernels/cuda/attention_wgmma.cuh: what a part costs is what its removal saves; those
# rows' results are wrong), and bench/sdpa_backends.py (which kernel torch's SDPA runs on the same shapes, and each
# backend's rate).
# Run from the repo root: source .devdeps/unpack.sh && bench/attn_study_device.sh; logs in $OUT.
set -uo pipefail
out=${OUT:-/tmp/attn_study}
mkdir -p "$out"
SECONDS=0
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j16 >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -20; exit 1; }
# the ablation build beside the first steps (its own folder; the test binary alone)
( cmake -S . -B build-abl -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON -DCMAKE_CUDA_FLAGS=-DCISPO_ATTN_ABLATION \
    >"$out/abl_cmake.log" 2>&1 && nice cmake --build build-abl -j8 --target test_backend_ops >"$out/abl_build.log" 2>&1
  echo "ablation build: rc $? at ${SECONDS} s" ) &
shapes="lens 16384 H64 KV8|lens 4096 H8 KV1"
rows() {  # rows BUILD OP [VAR=value...]: the timing rows at the peers' shapes
  local b=$1 op=$2
  shift 2
  env "$@" timeout 90 "$b/tests/test_backend_ops" --perf --backend cuda --op "$op" --defaults --shape "$shapes" 2>&1 |
    grep -E "TFLOP/s"
}
echo "== the tiled dQ layout: the backward's rows against the CPU reference"
CISPO_ATTN_DQ_TILED=1 timeout 120 build-gpu/tests/test_backend_ops --backend cuda --op attention_backward \
  >"$out/tiled_rows.log" 2>&1
echo "rc $?"; grep -E "FAIL|passed|failed" "$out/tiled_rows.log" | tail -3
for ((rep = 0; rep < ${REPS:-2}; rep++)); do
  echo "== rows layout"; rows build-gpu attention_backward CISPO_ATTN_DQ_TILED=0
  echo "== tiled layout"; rows build-gpu attention_backward CISPO_ATTN_DQ_TILED=1
done 2>&1 | tee "$out/tiled_ab.log"
echo "== test_model_gpu and test_train_gpu under the tiled layout"
CISPO_ATTN_DQ_TILED=1 timeout 200 ctest --test-dir build-gpu -R "^(test_model_gpu|test_train_gpu)\$" >"$out/tiled_suites.log" 2>&1
echo "rc $?"; grep -E "tests passed|Failed" "$out/tiled_suites.log" | head -4
wait
echo "== ablation (bits: 1 dQ's reductions, 2 dQ's stores and reductions, 4 the backward's exponentials, 8 its barrier,"
echo "   16 its lse and delta loads, 1024 its Q and dO loads; 32 the forward's exponentials, 64 its output stores,"
echo "   128 its key and value loads, 256 its rescales)"
# (the sums: 1025 the loads and reductions, 1027 and dQ's stores, 1047 and the exponentials and lse/delta loads,
# which leaves the products, the dS^T stores and the barrier; 1055 the products and dS^T stores alone)
for m in 0 1 2 4 8 16 1024 1025 1027 1047 1055 0; do
  echo "-- backward, CISPO_ATTN_ABLATE=$m"; rows build-abl attention_backward CISPO_ATTN_ABLATE=$m
done 2>&1 |
  tee "$out/ablate_bwd.log"
for m in 0 32 64 128 256 0; do echo "-- forward, CISPO_ATTN_ABLATE=$m"; rows build-abl attention_forward CISPO_ATTN_ABLATE=$m; done 2>&1 |
  tee "$out/ablate_fwd.log"
echo "== torch's SDPA backends"
timeout 120 python3 bench/sdpa_backends.py 2>&1 | grep -v Warning | tee "$out/sdpa.log"
echo "attn_study: ${SECONDS} s"
