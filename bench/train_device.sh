#!/usr/bin/env bash
# bench/train_device.sh — training throughput on the GPU machine in one call: builds, then cispo
# (bench/model_bench.c) and transformers (bench/hf_train_peer.py) on the same configurations in the
# same run: bench-1b at T=4096 (+AdamW, and fwd+bwd with the per-op table) and an M1-width slice
# (configs/models/m1-slice.yaml; LAYERS of them, default 2) fwd+bwd at T=4096 and 16384; both also with
# activation recompute (--recompute: the time it costs, the memory it saves), and the slice with bf16 gradients
# (--grad-bf16, the run key grad_dtype=bf16: 2 bytes a parameter less, as the peer's bf16 gradients).
# Run from the repo root: source .devdeps/unpack.sh && bench/train_device.sh [LAYERS]; logs in $OUT.
# M1_SLICE=0 leaves the slice out, BENCH1B=0 bench-1b; T_LIST=4096 times bench-1b at that length only.
# The slice's weights and fp32 gradients (6 bytes a parameter, no master: MODEL_NO_MASTER) need an H200 at
# two layers (one lightning, one softmax) and T=16384; with bf16 gradients (4 bytes a parameter) it fits an
# H100. Four layers (the slice as docs/performance.md defines it) with bf16 gradients fit an H200: 92.7 and 111.9 GiB
# at T=4096 and 16384 (the peer: 100.1 and 123.5); with fp32 gradients they fit no single card, so past two layers
# the slice's rows all take bf16 gradients.
set -uo pipefail
layers=${1:-2}
out=${OUT:-/tmp/train_bench}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j16 --target model_bench >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
run() { echo "+ $*"; "$@" 2>&1 | tee -a "$out/bench.log"; }
if [ "${BENCH1B:-1}" = 1 ]; then
  run build-gpu/model_bench --model configs/models/bench-1b.yaml --T 4096 --optim
  run build-gpu/model_bench --model configs/models/bench-1b.yaml --T "${T_LIST:-4096,16384}" --ops
  run build-gpu/model_bench --model configs/models/bench-1b.yaml --T "${T_LIST:-4096,16384}" --recompute
  run build-gpu/model_bench --model configs/models/bench-1b.yaml --T "${T_LIST:-4096,16384}" --recompute-cheap
  run python3 bench/hf_train_peer.py configs/models/bench-1b.yaml "${T_LIST:-4096,16384}"
fi
if [ "${M1_SLICE:-1}" = 1 ]; then
  run build-gpu/model_bench --model configs/models/m1-slice.yaml --layers "$layers" --T 4096,16384 --reps 3 --ops --grad-bf16
  if [ "$layers" -le 2 ]; then  # fp32 gradients: two layers only fit one card
    run build-gpu/model_bench --model configs/models/m1-slice.yaml --layers "$layers" --T 4096,16384 --reps 3 --ops
    run build-gpu/model_bench --model configs/models/m1-slice.yaml --layers "$layers" --T 4096,16384 --reps 3 --recompute
  else
    run build-gpu/model_bench --model configs/models/m1-slice.yaml --layers "$layers" --T 4096,16384 --reps 3 --recompute --grad-bf16
  fi
  run python3 bench/hf_train_peer.py configs/models/m1-slice.yaml 4096,16384 "$layers"
fi
echo "== summary"; grep -E "^(cispo|transformers)" "$out/bench.log"
