#!/usr/bin/env bash
# scripts/gpu_all.sh — on a GPU machine, everything in one call: builds once (CUDA on), runs each test
# labelled gpu under its own time limit, then the benchmarks with their peers in the same run: generation
# (bench/generate_device.sh), training (bench/train_device.sh, bench-1b; M1_SLICE=1 adds the M1-width
# slice, of SLICE_LAYERS layers: 2, or 4 on an H200 as docs/performance.md defines it), the LM-head precision study (bench/precision_device.sh) and a bench-1b SFT run of 300 steps through
# `cispo train` on the demo task (sft: the whole trainer on the GPU, activation recompute on, its
# memory report and held-out accuracy before and after). Logs under $OUT (or /tmp/gpu_all),
# one folder per benchmark, and all of them in $OUT/logs.tar.gz (rewritten after each part). SKIP_BENCH=1: the tests only; TESTS
# ("name:seconds ...", or none) chooses the tests, BENCH ("generate precision train sft", the default) the
# benchmarks; knobs_decode, knobs_ops and knobs_train time the tuning knobs that are not yet defaults against the
# defaults (bench/decode_ab.sh; the knobs' test_backend_ops perf rows; model_bench with --no-attn-tma
# --no-wgrad-tma, and with --no-wgrad-inflight --no-attn-pingpong too); ncu runs bench/ncu_device.sh (Nsight
# Compute on the kernels behind their peers, the decode step kernel by kernel). Exit status: the number of failed parts.
set -uo pipefail
out=${OUT:-/tmp/gpu_all}
mkdir -p "$out"
SECONDS=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCISPO_CUDA=ON >"$out/cmake.log" 2>&1 &&
  cmake --build build-gpu -j"$(nproc)" >"$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -20; exit 1; }
echo "build: ${SECONDS} s"
fails=0
part() {  # part NAME SECONDS COMMAND...: runs it with a time limit, log in $out/NAME.log, one status line
    local name=$1 limit=$2 t0=$SECONDS
    shift 2
    timeout "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    [ $rc = 0 ] || fails=$((fails + 1))
    echo "== $name: rc $rc in $((SECONDS - t0)) s$([ $rc = 124 ] && echo " (time limit $limit s)")"
    # (tar's status 1, a file that changed while read, still leaves a whole archive)
    tar -czf "$out/logs.tar.gz.tmp" -C "$out" --exclude 'logs.tar.gz*' . 2>/dev/null; mv -f "$out/logs.tar.gz.tmp" "$out/logs.tar.gz"
}
default_tests="test_backend_ops_gpu:90 test_backend_ops_gpu_forms:60 test_backend_ops_gpu_forms_qreg:60
 test_backend_ops_gpu_forms_cluster:60 test_model_gpu:60 test_engine_gpu:60 test_nccl_ep:30 test_train_gpu:90 test_hf_generate_gpu:120"
tests=${TESTS:-$default_tests}
[ "$tests" = none ] && tests=""
for t in $tests; do
    # blocking launches: a kernel fault is reported by the op that launched it
    part "${t%%:*}" "${t##*:}" env CUDA_LAUNCH_BLOCKING=1 ctest --test-dir build-gpu -R "^${t%%:*}\$" -V
    grep -E "FAIL|Timeout|fatal|rror:" "$out/${t%%:*}.log" | head -8
done
[ "${SKIP_BENCH:-0}" = 1 ] && BENCH=""
for bench in ${BENCH-generate precision train sft}; do
    case $bench in
    generate)
        part generate ${GEN_LIMIT:-170} env OUT="$out/generate" bench/generate_device.sh
        grep -E "^(cispo|transformers) generate|copy bandwidth" "$out/generate.log" ;;
    precision)
        part precision 90 env OUT="$out/precision" bench/precision_device.sh sft_steps=150 --samples "${PRECISION_SAMPLES:-512}"
        grep -E "^(rollout|sft 150)" "$out/precision.log" ;;
    train)
        part train ${TRAIN_LIMIT:-180} env OUT="$out/train" M1_SLICE="${M1_SLICE:-0}" bench/train_device.sh ${SLICE_LAYERS:-2}
        grep -A30 "== summary" "$out/train.log" | head -20 ;;
    sft)
        part sft ${SFT_LIMIT:-300} build-gpu/cispo train configs/demo.yaml model=configs/models/bench-1b.yaml \
            device=cuda sft_steps=300 sft_lr=3e-4 steps=0 eval_size=200 recompute=true out=/tmp/sft-bench1b-$$
        grep -E "^memory|held-out|sft +300" "$out/sft.log" ;;
    knobs_decode)  # the tuning knobs not yet the defaults, against the defaults (BENCH="knobs_decode knobs_ops
                   # knobs_train": a device call for knobs_decode, one for the other two)
        part knobs_decode ${KNOBS_DECODE_LIMIT:-300} env OUT="$out/decode_ab" bench/decode_ab.sh
        grep -A12 "^== ms a step" "$out/knobs_decode.log" ;;
    knobs_ops)
        part knobs_ops 180 build-gpu/tests/test_backend_ops --backend cuda --perf \
            --op matmul,grouped_matmul,grouped_matmul_pair,grouped_matmul_glu,grouped_matmul_wgrad,attention_forward,attention_backward,sample_tokens
        grep -E "skinny|loop|inflight|pingpong|tma|dq-overlap|cluster8|FAIL" "$out/knobs_ops.log" | head -48 ;;
    knobs_train)
        part knobs_train ${KNOBS_TRAIN_LIMIT:-400} bash -c 'for f in "" "--no-attn-tma --no-wgrad-tma" \
            "--no-attn-tma --no-wgrad-tma --no-wgrad-inflight --no-attn-pingpong"; do echo "== knobs: ${f:-defaults}"
            build-gpu/model_bench --model configs/models/bench-1b.yaml --T 4096,16384 $f || exit 1
            build-gpu/model_bench --model configs/models/m1-slice.yaml --layers 2 --T 4096 --reps 3 --grad-bf16 $f || exit 1
            done'
        grep -E "^== knobs|^cispo" "$out/knobs_train.log" ;;
    ncu)  # Nsight Compute's counters of the kernels behind their peers, the decode step kernel by kernel
        part ncu ${NCU_LIMIT:-500} env OUT="$out/ncu" bench/ncu_device.sh
        grep -E "^==|Duration|Throughput|Occupancy|stall|decode step|launches" "$out/ncu.log" | head -80 ;;
    *) echo "gpu_all: unknown benchmark '$bench' (generate, precision, train, sft, knobs_decode, knobs_ops, knobs_train, ncu)"; fails=$((fails + 1)) ;;
    esac
done
echo "gpu_all: ${SECONDS} s, $fails part(s) failed"
exit "$fails"
