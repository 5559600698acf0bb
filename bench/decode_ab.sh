#!/usr/bin/env bash
# bench/decode_ab.sh — the decode step's kernel choices against each other in one call on the GPU machine: one
# build, then bench/generate_bench.c on bench-1b (prompt 128, NEW new tokens, batches BATCH) with the tuning
# knobs' variants in one process (--variants: one model set-up for all, the variants in turn at each batch,
# ROUNDS rounds, so that a drift of the card's clocks falls on every variant alike) and a table of each variant's
# median ms a step against the first's (base, the defaults). VARIANTS (comma-separated; names joined by '+'
# combine):
#   base      the defaults (the fused decode step, the router in the norm, the wide-k expert tiles)
#   unfused   the separate decode products (decode_fused = -1)
#   noroute   the router's product and moe_route_forward after the norm (decode_route = -1)
#   loop      the wide-k expert tiles on a persistent grid (gg_skinny_wide = 2)
#   narrow    the 32-k skinny expert tiles (gg_skinny_wide = -1)
#   dense64   linear layers of at most 64 rows through the wide-k tiles (dense_skinny = 64); dense256 up to 256
#   gate      a lightning layer's output norm and gate in its decode kernel (decode_gate = 1)
#   sort      the routes sorted by the post-attention norm's last CTA, the gated product gathering its rows: no
#             moe_dispatch (decode_sort = 1)
#   sc1 .. sc8  the sampler with 1, 2, 4 or 8 CTAs a row (sample_cluster)
# ENV_VARIANTS (space-separated) run a process each, as base with an environment setting, after the rest:
#   stages3   the wide-k tiles with 3 stages (CISPO_GS_STAGES=3)
#   bk256     the wide-k tiles with a 256 k step (CISPO_GS_BK=256)
#   nopdl     without programmatic dependent launch (CISPO_NO_PDL=1)
# Run from the repo root: source .devdeps/unpack.sh && bench/decode_ab.sh; logs in $OUT (or /tmp/decode_ab).
set -uo pipefail
out=${OUT:-/tmp/decode_ab}
new=${NEW:-256}
batch=${BATCH:-1,64,256}
rounds=${ROUNDS:-2}
variants=${VARIANTS:-base,gate,sort,gate+sort,noroute,sc1}
env_variants=${ENV_VARIANTS:-}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" --target generate_bench >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
fails=0
bench() {  # bench LOG [ENV...] -- ARGS...: one generate_bench process
    local log=$1
    shift
    local envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    env "${envs[@]}" build-gpu/generate_bench --model configs/models/bench-1b.yaml --prompt 128 --new "$new" \
        --batch "$batch" "$@" >"$log" 2>&1 || { fails=$((fails + 1)); tail -5 "$log"; }
}
bench "$out/variants.log" -- --variants "$variants" --rounds "$rounds"
grep -E "^cispo generate" "$out/variants.log"
sed -n '/^== ms a step/,$p' "$out/variants.log" | tee "$out/summary.txt"
for v in $env_variants; do
    case $v in
    stages3) e=CISPO_GS_STAGES=3 ;;
    bk256) e=CISPO_GS_BK=256 ;;
    nopdl) e=CISPO_NO_PDL=1 ;;
    *) echo "decode_ab: unknown environment variant '$v' (stages3, bk256, nopdl)"; fails=$((fails + 1)); continue ;;
    esac
    bench "$out/$v.log" "$e" -- --rounds "$rounds"
    grep -E "^cispo generate" "$out/$v.log" | sed "s/^/$v ($e): /" | tee -a "$out/summary.txt"
done
exit "$fails"
