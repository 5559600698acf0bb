#!/usr/bin/env bash
# bench/op_device.sh — the per-op comparison on the GPU machine in one call: test_backend_ops' timing rows
# (--perf; the experts' grouped GEMMs and causal attention at bench-1b's and M1's shapes) and torch's own
# kernels on the same shapes (bench/op_peers.py: torch._grouped_mm, SDPA). Logs in $OUT.
# Run from the repo root: source .devdeps/unpack.sh && bench/op_device.sh; AB="CISPO_WG_PERSIST=0 CISPO_ATTN_ORDER=head"
# also times the rows under each of those settings in the same call, REPS times over (default 1), alternating with
# the defaults (a setting of several variables joins them with commas: CISPO_WG_TSTORE=1,CISPO_WG_PERSIST=0); OPS (comma-separated test_backend_ops op names) narrows the rows, e.g.
# OPS=attention_backward REPS=3 AB=CISPO_ATTN_ORDER=head bench/op_device.sh. CLOCKS=1 also logs the SM clock and
# power through each part (bench/clock_summary.py).
set -uo pipefail
out=${OUT:-/tmp/op_bench}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j16 --target test_backend_ops >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
ops=${OPS:-grouped_matmul_pair,grouped_matmul,grouped_matmul_wgrad,attention_forward,attention_backward}
rows() {  # rows [VAR=value]: the timing rows, under that environment setting (only the peers' shapes, and not the
          # rows that force another kernel, which the table never reads)
  env "$@" build-gpu/tests/test_backend_ops --perf --backend cuda --op "$ops" --defaults \
    --shape "even|lens 4096 H8 KV1|lens 16384 H64 KV8" 2>&1 | grep -E "TFLOP/s"
}
# CLOCKS=1: the SM clock and power logged every 20 ms (nvidia-smi), each part marked, summed up at the end
# (bench/clock_summary.py): whether ours and torch's ran at the same clocks
mark() { :; }
if [ -n "${CLOCKS:-}" ]; then
  nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,utilization.gpu --format=csv,noheader,nounits -lms 20 \
    >"$out/clocks.csv" 2>&1 &
  smi=$!
  : >"$out/marks.txt"
  mark() { echo "$(date '+%Y/%m/%d %H:%M:%S.%3N') $1" >>"$out/marks.txt"; }
fi
mark ours
rows | tee "$out/cispo.log"
# AB="VAR=value ...": the rows again under each setting (a kernel's other form, for comparison), then the defaults,
# REPS times
for ((rep = 0; rep < ${REPS:-1}; rep++)); do
  for ab in ${AB:-}; do
    echo "== $ab" | tee -a "$out/ab.log"
    mark "$ab"
    rows ${ab//,/ } | tee -a "$out/ab.log"
  done
  if [ -n "${AB:-}" ]; then
    echo "== defaults again" | tee -a "$out/ab.log"
    mark "defaults again"
    rows | tee -a "$out/ab.log"
  fi
done
mark torch
python3 bench/op_peers.py 2>&1 | grep -v Warning | tee "$out/torch.log"
mark end
if [ -n "${CLOCKS:-}" ]; then
  kill "$smi" 2>/dev/null
  python3 bench/clock_summary.py "$out/clocks.csv" "$out/marks.txt" | tee "$out/clocks.txt"
fi
# the table: each row against torch's kernel on the same shape, and the ratio
python3 bench/op_ratios.py "$out/cispo.log" "$out/torch.log" | tee "$out/ratios.md"
