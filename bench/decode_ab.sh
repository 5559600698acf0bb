#!/usr/bin/env bash
# bench/decode_ab.sh — the decode step's kernel choices against each other in one call on the GPU machine: one
# build, then bench/generate_bench.c on bench-1b (prompt 128, NEW new tokens, batches BATCH) once per variant,
# interleaved over ROUNDS rounds so that a drift of the card's clocks falls on every variant alike, and a table of
# each variant's median ms a step against the baseline's. The variants (VARIANTS, space-separated names; the default
# leaves out stages3, bk256, nopdl and sc1):
#   base      the defaults (the fused decode step: a lightning layer's one q|k|v|gate product, grouped_matmul_glu)
#   unfused   the separate decode products (--decode-unfused; backend_tuning_t.decode_fused = -1)
#   noroute   the router's product and moe_route_forward after the norm (--no-decode-route; decode_route = -1)
#   loop      the wide-k expert tiles on a persistent grid (--skinny-loop; gg_skinny_wide = 2)
#   dense64   linear layers of at most 64 rows through the wide-k tiles (--dense-skinny 64; dense_skinny)
#   dense256  the same up to 256 rows
#   stages3   the wide-k tiles with 3 stages (CISPO_GS_STAGES=3)
#   bk256     the wide-k tiles with a 256 k step (CISPO_GS_BK=256)
#   nopdl     without programmatic dependent launch (CISPO_NO_PDL=1)
#   sc1       the sampler with one CTA a row instead of a cluster (CISPO_SAMPLE_CLUSTER=1)
#   all       loop + dense64
# Run from the repo root: source .devdeps/unpack.sh && bench/decode_ab.sh; logs in $OUT (or /tmp/decode_ab).
set -uo pipefail
out=${OUT:-/tmp/decode_ab}
new=${NEW:-256}
batch=${BATCH:-1,64,256}
rounds=${ROUNDS:-2}
variants=${VARIANTS:-base unfused noroute loop dense64 dense256 all}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" --target generate_bench >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
fails=0
for r in $(seq 1 "$rounds"); do
    for v in $variants; do
        envs=() args=()
        case $v in
        base) ;;
        unfused) args=(--decode-unfused) ;;
        noroute) args=(--no-decode-route) ;;
        loop) args=(--skinny-loop) ;;
        dense64) args=(--dense-skinny 64) ;;
        dense256) args=(--dense-skinny 256) ;;
        stages3) envs=(CISPO_GS_STAGES=3) ;;
        bk256) envs=(CISPO_GS_BK=256) ;;
        nopdl) envs=(CISPO_NO_PDL=1) ;;
        sc1) envs=(CISPO_SAMPLE_CLUSTER=1) ;;
        all) args=(--skinny-loop --dense-skinny 64) ;;
        *) echo "decode_ab: unknown variant '$v'"; fails=$((fails + 1)); continue ;;
        esac
        echo "+ round $r: $v: ${envs[*]} ${args[*]}"
        env "${envs[@]}" build-gpu/generate_bench --model configs/models/bench-1b.yaml --prompt 128 --new "$new" \
            --batch "$batch" "${args[@]}" >"$out/$v.$r.log" 2>&1 || { fails=$((fails + 1)); tail -5 "$out/$v.$r.log"; }
        grep -E "^cispo generate" "$out/$v.$r.log" | sed "s/^/  $v: /"
    done
done
# median ms a step of each (variant, batch) over the rounds, and its ratio to base's
echo "== ms a step (median of $rounds rounds), and base's over the variant's (> 1: faster)"
for v in $variants; do cat "$out/$v".*.log 2>/dev/null | grep -E "^cispo generate" | sed "s/^/$v /"; done |
    awk '{ split($6, b, "="); v = $1; B = b[2]; sub(":", "", B); ms = $9; n[v, B]++; x[v, B, n[v, B]] = ms
           if (!(v in seenv)) { seenv[v] = 1; vs[++nv] = v } if (!(B in seenb)) { seenb[B] = 1; bs[++nb] = B } }
         function med(v, B,   i, j, t, k) { k = n[v, B]; for (i = 1; i <= k; i++) a[i] = x[v, B, i]
           for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
           return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2 }
         END { printf "%-10s", "variant"; for (j = 1; j <= nb; j++) printf "  B=%-14s", bs[j]; printf "\n"
           for (i = 1; i <= nv; i++) { printf "%-10s", vs[i]
             for (j = 1; j <= nb; j++) { m = med(vs[i], bs[j]); r = n["base", bs[j]] ? med("base", bs[j]) / m : 0
               printf "  %7.3f (%5.3fx)", m, r }
             printf "\n" } }' | tee "$out/summary.txt"
exit "$fails"
