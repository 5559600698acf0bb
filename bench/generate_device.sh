#!/usr/bin/env bash
# bench/generate_device.sh — generation throughput on the GPU machine in one call: builds, then the
# engine (bench/generate_bench.c) and transformers' generate() (bench/hf_generate_peer.py) on bench-1b
# in the same run: prompt 128, 256 and 4096 new tokens, batch 1, 16, 64, 256; tokens/s, time per
# decode step, bytes a step moves and the fraction of the measured copy bandwidth.
# Run from the repo root: source .devdeps/unpack.sh && bench/generate_device.sh; logs in $OUT.
# OPS=1 adds each configuration's per-op decode-step table; NARROW=1 runs the decode expert products through the
# 32-k skinny tiles (generate_bench --skinny-narrow), LOOP=1 the wide-k ones on a persistent grid (--skinny-loop);
# DENSE=M the linear layers of at most M rows through the wide-k tiles (--dense-skinny M); UNFUSED=1 the
# separate decode products (--decode-unfused); NOROUTE=1 the router's product and routes after the norm (--no-decode-route); PEER=0 leaves transformers out; NEW and BATCH override the lists
# (comma-separated); PEER_NEW and
# PEER_BATCH the peer's (default 256 new tokens at every batch: 4096 would take it most of an hour).
set -uo pipefail
out=${OUT:-/tmp/generate_bench}
new=${NEW:-256,4096}
batch=${BATCH:-1,16,64,256}
peer_new=${PEER_NEW:-256}
peer_batch=${PEER_BATCH:-$batch}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j16 --target generate_bench >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
run() { echo "+ $*"; "$@" 2>&1 | tee -a "$out/bench.log"; }
run build-gpu/generate_bench --model configs/models/bench-1b.yaml --prompt 128 --new "$new" --batch "$batch" \
  $([ "${OPS:-0}" = 1 ] && echo --ops) $([ "${NARROW:-0}" = 1 ] && echo --skinny-narrow) \
  $([ "${UNFUSED:-0}" = 1 ] && echo --decode-unfused) $([ "${NOROUTE:-0}" = 1 ] && echo --no-decode-route) $([ "${LOOP:-0}" = 1 ] && echo --skinny-loop) \
  $([ -n "${DENSE:-}" ] && echo --dense-skinny "$DENSE")
if [ "${PEER:-1}" = 1 ]; then
  run python3 bench/hf_generate_peer.py configs/models/bench-1b.yaml 128 "$peer_new" "$peer_batch"
fi
echo "== summary"; grep -E "^(cispo|transformers) generate" "$out/bench.log"
