#!/usr/bin/env bash
# tests/gpu/train_gpu.sh CISPO_BIN — `cispo train device=cuda` end to end on a GPU machine: a short SFT
# + RL run of the demo as it is (`cispo train configs/demo.yaml device=cuda`: the demo model, heads of 16) on the
# GPU, then its last checkpoint evaluated by the CPU path and by the GPU. device=auto with a model whose heads the
# CUDA kernels do not take (8 wide) runs on the CPU and says why; device=cuda refuses it by name.
# Greedy held-out accuracy of one checkpoint on the two backends must agree within 2 points (bf16
# rounding flips a greedy choice only where the top-two margin is below it), and the run must learn
# (accuracy above the 5% a random policy scores at this length). The SFT runs the demo's 800 steps: after 300 the
# accuracy was 4-8%, so a nondeterministic run (the GPU's atomics) could land either side of 5%.
set -euo pipefail
bin=${1:?usage: train_gpu.sh CISPO_BIN}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bin" train configs/demo.yaml device=cuda out="$out/run" sft_steps=800 steps=5 prompts_per_step=16 group_size=4 \
  eval_size=300 eval_every=0 save_every=0 keep_checkpoints=1 report=false
ck=$(ls "$out"/run/ckpt-*.h5 | tail -n 1)
acc() { sed -n 's/.*"accuracy": \([0-9.eE+-]*\).*/\1/p'; }
a_cpu=$("$bin" eval configs/demo.yaml model="$ck" eval_size=300 device=cpu | acc)
a_gpu=$("$bin" eval configs/demo.yaml model="$ck" eval_size=300 device=cuda | acc)
echo "held-out accuracy of $ck: cpu $a_cpu, cuda $a_gpu"
sed 's/^head_dim: 16 /head_dim: 8  /' configs/models/tiny.yaml >"$out/tiny-d8.yaml"
grep -q "^head_dim: 8 " "$out/tiny-d8.yaml" || { echo "FAIL: no head_dim line to narrow in configs/models/tiny.yaml"; exit 1; }
"$bin" train configs/demo.yaml model="$out/tiny-d8.yaml" device=auto out="$out/auto" sft_steps=2 steps=0 eval_size=10 \
  report=false >"$out/auto.txt" 2>&1 || { echo "FAIL: the demo with heads of 8 and device=auto:"; cat "$out/auto.txt"; exit 1; }
grep -q "device=auto: the CUDA kernels take head_dim 16, 32, 64 or 128 and this model's is 8: running on the CPU" \
  "$out/auto.txt" || { echo "FAIL: device=auto with heads of 8 did not fall back to the CPU with its reason:"; cat "$out/auto.txt"; exit 1; }
if "$bin" train configs/demo.yaml model="$out/tiny-d8.yaml" device=cuda out="$out/cuda8" sft_steps=2 steps=0 eval_size=10 \
  report=false >"$out/cuda8.txt" 2>&1 ||
  ! grep -q "key 'device': cuda asked, but the CUDA kernels take head_dim 16, 32, 64 or 128" "$out/cuda8.txt"; then
  echo "FAIL: device=cuda with heads of 8 was not refused by name:"; cat "$out/cuda8.txt"; exit 1
fi
echo "ok: device=auto with heads of 8 runs on the CPU and says why; device=cuda refuses them by name"
# bf16 gradients (grad_dtype=bf16): the same run learns, and its memory report counts 2 bytes a gradient
"$bin" train configs/demo.yaml model=configs/models/tiny-d64.yaml device=cuda grad_dtype=bf16 out="$out/gbf16" sft_steps=800 \
  steps=5 prompts_per_step=16 group_size=4 eval_size=300 eval_every=0 save_every=0 keep_checkpoints=1 report=false \
  >"$out/gbf16.txt" 2>&1 || { echo "FAIL: grad_dtype=bf16:"; cat "$out/gbf16.txt"; exit 1; }
grep -q "bf16 gradients" "$out/gbf16.txt" || { echo "FAIL: no bf16 gradients in the memory report:"; cat "$out/gbf16.txt"; exit 1; }
a_b16=$(sed -n 's/.*held-out accuracy before RL: [0-9.]*%, after RL: \([0-9.]*\)%.*/\1/p' "$out/gbf16.txt")
echo "grad_dtype=bf16: held-out accuracy after RL $a_b16%"
python3 - "$a_cpu" "$a_gpu" "${a_b16:-0}" <<'PY'
import sys
c, g, b = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]) / 100
ok = abs(c - g) <= 0.02 and c > 0.05
print(("ok" if ok else "FAIL") + f": |cpu - cuda| = {abs(c - g):.4f} (limit 0.02), cpu accuracy {c:.4f} (must exceed 0.05)")
okb = b > 0.05
print(("ok" if okb else "FAIL") + f": grad_dtype=bf16 learns: accuracy {b:.4f} (must exceed 0.05; fp32 gradients: {g:.4f})")
sys.exit(0 if ok and okb else 1)
PY
