#!/usr/bin/env bash
# bench/ncu_device.sh — on the GPU machine: Nsight Compute's counters of the kernels still behind their peers (the
# per-op rows of docs/performance.md) and the kernel-by-kernel time of bench-1b's decode step, in one call. Each
# kernel runs alone under ncu (launches serialised; clocks left as they are, --clock-control none), so a decode
# kernel's duration bounds its share of a CUDA-graph step from above. PARTS (space-separated, all by default):
#   attention  the attention backward and forward perf rows (T 16384 H 64 KV 8; T 4096 H 8 KV 1): throughputs,
#              occupancy, warp states and stall reasons (test_backend_ops --perf --shape, first launch)
#   gemm       M1's expert products (W1|W3, W2, the W1 weight gradient) likewise (the kernels the defaults take:
#              persistent, a CTA a tile, or clustered under CISPO_WG_CLUSTER=1)
#   gemm_torch torch's grouped GEMM (CUTLASS, through torch._grouped_mm: bench/op_peers.py --only) on M1's W1|W3 and
#              W2, the same counters, for the side-by-side with gemm's; not in the default list
#   gemm_pipes the tensor pipe's busy share and the instructions issued, ours and torch's, on M1's W1|W3 and W2 (not
#              in the default list)
#   stalls     PC sampling of the attention backward and forward (T 16384 H 64 KV 8), M1's weight gradient and
#              W1|W3: the SASS instructions holding 80% of the stall samples, with their top reasons, then the
#              CUDA source lines holding 70%
#              (bench/ncu_stalls.py; the reports and the source pages stay in $OUT); not in the default list
#   stalls_attn the same for the attention forward and backward alone (T 16384 H 64 KV 8); not in the default list
#   decode     the sampler's counters at batch 64 (V 32768), then every kernel of bench-1b decode steps at batch 64
#              (generate_bench with 6 new tokens less with 2: four steps), launches and microseconds a step by kernel
# Run from the repo root: source .devdeps/unpack.sh && bench/ncu_device.sh; reports in $OUT (or /tmp/ncu).
set -uo pipefail
out=${OUT:-/tmp/ncu}
mkdir -p "$out"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" --target test_backend_ops generate_bench >"$out/build.log" 2>&1 ||
  { tail -30 "$out/build.log"; exit 1; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
ncu=(ncu --clock-control none)
sections=(--section SpeedOfLight --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis
          --section WarpStateStats --section SchedulerStats --section Occupancy --section LaunchStats)
fails=0
kernel() {  # kernel NAME REGEX OP SHAPE: the first launch of a kernel matching REGEX in OP's row of that shape
    local name=$1 regex=$2 op=$3 shape=$4
    echo "== $name: $op, $shape, kernel ~ $regex"
    timeout 300 "${ncu[@]}" "${sections[@]}" --kernel-name "regex:$regex" --launch-count 1 \
        build-gpu/tests/test_backend_ops --backend cuda --op "$op" --perf --shape "$shape" >"$out/$name.txt" 2>&1 ||
        { fails=$((fails + 1)); tail -3 "$out/$name.txt"; }
    grep -E "^ +(Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L2 Cache Throughput|Registers Per \
Thread|Achieved Occupancy|Issue Slots Busy|Issued Ipc Active|Warp Cycles Per Issued Instruction|Shared Memory \
Configuration Size)|stall|[Ss]talled" "$out/$name.txt" | head -24
}
stalls() {  # stalls NAME REGEX OP SHAPE: where the first launch of that kernel stalls, SASS instruction by instruction
    local name=$1 regex=$2 op=$3 shape=$4
    echo "== $name (stalls by instruction): $op, $shape, kernel ~ $regex"
    timeout 300 "${ncu[@]}" --section WarpStateStats --section SourceCounters --kernel-name "regex:$regex" \
        --launch-count 1 -f -o "$out/$name" build-gpu/tests/test_backend_ops --backend cuda --op "$op" --perf \
        --shape "$shape" >"$out/$name.log" 2>&1 || { fails=$((fails + 1)); tail -3 "$out/$name.log"; return; }
    ncu --import "$out/$name.ncu-rep" --page source --csv --print-source sass >"$out/$name.csv" 2>&1 &&
        python3 bench/ncu_stalls.py "$out/$name.csv" 0.8 | head -70 ||
        { fails=$((fails + 1)); grep '^"' "$out/$name.csv" | head -4 | cut -c1-1500; }
    # the same samples by line of CUDA source (the kernels are built with -lineinfo)
    echo "-- $name by source line"
    ncu --import "$out/$name.ncu-rep" --page source --csv --print-source cuda >"$out/${name}_cuda.csv" 2>&1 &&
        python3 bench/ncu_stalls.py "$out/${name}_cuda.csv" 0.7 | head -40 ||
        { fails=$((fails + 1)); grep '^"' "$out/${name}_cuda.csv" | head -4 | cut -c1-1500; }
}
decode_steps() {  # every kernel's launches and microseconds a decode step at batch 64
    for n in 2 6; do
        timeout 400 "${ncu[@]}" --metrics gpu__time_duration.sum --print-units base --csv build-gpu/generate_bench \
            --model configs/models/bench-1b.yaml --prompt 128 --new "$n" --batch 64 >"$out/decode_new$n.csv" 2>&1 ||
            { fails=$((fails + 1)); tail -3 "$out/decode_new$n.csv"; return; }
    done
    python3 - "$out/decode_new2.csv" "$out/decode_new6.csv" <<'PY' | tee "$out/decode_kernels.txt"
import csv, sys
def load(path):  # kernel name -> [launches, ns]
    k = {}
    with open(path) as f:
        rows = [l for l in f if l.startswith('"')]
    for r in csv.DictReader(rows):
        if r.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = r["Kernel Name"].split("(")[0][:70]
        v = k.setdefault(name, [0, 0.0])
        v[0] += 1
        v[1] += float(r["Metric Value"].replace(",", ""))
    return k
a, b = load(sys.argv[1]), load(sys.argv[2])
steps = 4
d = {n: (b[n][0] - a.get(n, [0, 0])[0], b[n][1] - a.get(n, [0, 0.0])[1]) for n in b}
tot = sum(v[1] for v in d.values()) / steps
print(f"decode step, batch 64, kernels run one at a time: {tot / 1e3:.1f} us a step")
for n, (c, ns) in sorted(d.items(), key=lambda x: -x[1][1]):
    if c > 0:
        print(f"  {n:70s} {c / steps:6.1f} launches {ns / steps / 1e3:9.1f} us {100 * ns / steps / tot:5.1f}%")
PY
}
for part in ${PARTS:-attention gemm decode}; do
    case $part in
    attention)
        kernel attn_bwd_16k "bwd_wg_(ws_)?kernel" attention_backward "T16384 lens 16384 H64"
        kernel attn_bwd_4k "bwd_wg_(ws_)?kernel" attention_backward "T4096 lens 4096 H8"
        kernel attn_fwd_16k "fwd_wg" attention_forward "T16384 lens 16384 H64"
        kernel attn_fwd_4k "fwd_wg" attention_forward "T4096 lens 4096 H8" ;;
    gemm)
        kernel m1_w13 "wg[tpc]*_forward|gg_forward" grouped_matmul_pair "G8 rows8192 n9216 k6144"
        kernel m1_w2 "wg[tpc]*_forward|gg_forward" grouped_matmul "G8 rows8192 n6144 k9216"
        kernel m1_wgrad "wg[tpc]*_wgrad|gg_wgrad" grouped_matmul_wgrad "G8 rows8192 n9216 k6144" ;;
    gemm_pipes)  # the tensor pipe's busy cycles and the instructions issued, ours and torch's, on M1's W1|W3 and W2
        # (the gmma-specific pipe metric read n/a on an H100 with the installed ncu; the tensor pipe's, beside it)
        pm=sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,sm__cycles_elapsed.max
        pm=$pm,sm__pipe_tensor_cycles_active.avg.pct_of_peak_sustained_active
        pm=$pm,smsp__inst_executed.sum,smsp__inst_issued.sum,sm__warps_active.avg.pct_of_peak_sustained_active
        for row in "m1_w13 grouped_matmul_pair G8 rows8192 n9216 k6144" "m1_w2 grouped_matmul G8 rows8192 n6144 k9216"
        do
            set -- $row
            echo "== pipes_$1 (ours): $2"
            timeout 120 "${ncu[@]}" --metrics "$pm" --kernel-name "regex:wg[tpc]*_forward|gg_forward" --launch-count 1 \
                build-gpu/tests/test_backend_ops --backend cuda --op "$2" --perf --shape "$3 $4 $5 $6" 2>&1 |
                grep -E "^ +(sm|smsp)__" || fails=$((fails + 1))
        done
        for shape in "M1 W1|W3" "M1 W2"; do
            echo "== pipes torch: $shape"
            timeout 120 "${ncu[@]}" --metrics "$pm" --kernel-name "regex:device_kernel" --launch-count 1 \
                python3 bench/op_peers.py --only "$shape" 2>&1 | grep -E "^ +(sm|smsp)__" || fails=$((fails + 1))
        done ;;
    gemm_torch)  # torch's CUTLASS kernel (cutlass::device_kernel<GemmUniversal<...>>) on the same shapes
        for shape in "M1 W1|W3" "M1 W2"; do
            name=torch_$(echo "$shape" | tr -c 'A-Za-z0-9\n' _)
            echo "== $name: torch._grouped_mm, $shape, kernel ~ device_kernel"
            timeout 300 "${ncu[@]}" "${sections[@]}" --kernel-name "regex:device_kernel" --launch-count 1 \
                python3 bench/op_peers.py --only "$shape" >"$out/$name.txt" 2>&1 ||
                { fails=$((fails + 1)); tail -3 "$out/$name.txt"; }
            grep -E "^ +(Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|L2 Cache Throughput|\
Registers Per Thread|Achieved Occupancy|Issue Slots Busy|Issued Ipc Active|Warp Cycles Per Issued Instruction|\
Grid Size|Block Size|Cluster Size)|stall|[Ss]talled" "$out/$name.txt" | head -24
        done ;;
    stalls)  # the kernels behind their peers at M1's widths, instruction by instruction
        stalls stalls_attn_bwd_16k "bwd_wg_(ws_)?kernel" attention_backward "T16384 lens 16384 H64"
        stalls stalls_m1_wgrad "wg[tpc]*_wgrad|gg_wgrad" grouped_matmul_wgrad "G8 rows8192 n9216 k6144"
        stalls stalls_attn_fwd_16k "fwd_wg" attention_forward "T16384 lens 16384 H64"
        stalls stalls_m1_w13 "wg[tpc]*_forward|gg_forward" grouped_matmul_pair "G8 rows8192 n9216 k6144" ;;
    stalls_attn)
        stalls stalls_attn_fwd_16k "fwd_wg" attention_forward "T16384 lens 16384 H64"
        stalls stalls_attn_bwd_16k "bwd_wg_(ws_)?kernel" attention_backward "T16384 lens 16384 H64" ;;
    decode)
        kernel sample_64 sample_kernel sample_tokens "n64 V32768 slots64 plain"
        decode_steps ;;
    *) echo "ncu_device: unknown part '$part' (attention, gemm, gemm_torch, gemm_pipes, stalls, stalls_attn, decode)"
       fails=$((fails + 1)) ;;
    esac
done
echo "ncu_device: $fails part(s) failed"
exit "$fails"
