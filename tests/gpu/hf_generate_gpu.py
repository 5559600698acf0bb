#!/usr/bin/env python3
# tests/gpu/hf_generate_gpu.py CISPO_BIN [PRESET [DEVICE]] — greedy generation by `cispo generate` on the GPU
# against transformers' generate() in bf16, on bench-1b (the preset) with random weights: transformers'
# MiniMaxForCausalLM is built from the preset (bench/hf_minimax.py), its LM head scaled so that next-token
# distributions are peaked (top-two logit gaps of about one) and its routers so that expert choices are
# decisive, saved as an HF directory (bf16 safetensors), and both generate N tokens greedily from the same B
# random prompts (cispo: --prompts, continuous batching).
# Rule: for each prompt the tokens are equal up to the first difference, and there transformers' own top-two
# logit margin must be below MARGIN + |top logit| / 64 (two bf16 models' logits may swap order there: the
# absolute part is test_engine_gpu's GREEDY_MARGIN, the relative part four bf16 ulps of the logit itself).
# A parting at a decisive step is allowed for at most B / 8 prompts: two bf16 models can also break a
# near-tie of a router's K-th and next expert differently (on an H100 at 79d6f97, with the routers as
# initialised, one prompt of 16 parted at its first token with a logit margin of 0.63), which moves that
# token's output by O(1); transformers cannot replay cispo's routes, so such a parting is counted, not
# excused one by one. So that the rule cannot pass vacuously, the prefixes compared must hold at least B
# decisive steps (margin above the bound) in all. Prints the matched lengths and margins.
# DEVICE cpu runs cispo's fp32 CPU engine instead (a dry run of this script on a machine without a GPU).
import os, subprocess, sys, tempfile, shutil
import torch
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from hf_minimax import minimax_config  # noqa: E402
from transformers import MiniMaxForCausalLM  # noqa: E402

MARGIN = 0.16
B, P, N = 16, 24, 32
HEAD_SCALE = 5.0    # logits of std about 3 instead of 0.6 (initializer_range 0.02 over C = 1024)
ROUTER_SCALE = 5.0  # router logits likewise: top-K choices with gaps of about one

cispo = sys.argv[1]
preset = sys.argv[2] if len(sys.argv) > 2 else "configs/models/bench-1b.yaml"
device = sys.argv[3] if len(sys.argv) > 3 else "cuda"
torch_dev = "cuda" if device == "cuda" else "cpu"
y, kinds, cfg = minimax_config(preset, P + N + 16)
cfg.eos_token_id = None
torch.manual_seed(0)
with torch.device(torch_dev):
    model = MiniMaxForCausalLM(cfg)
with torch.no_grad():
    model.lm_head.weight.mul_(HEAD_SCALE)
    routers = [w for name, w in model.named_parameters()  # the name differs across transformers versions
               if name.endswith("block_sparse_moe.gate.weight") or name.endswith("mlp.gate.weight")]
    assert len(routers) == cfg.num_hidden_layers, "the routers' weights were not found"
    for w in routers:
        w.mul_(ROUTER_SCALE)
model = model.to(torch.bfloat16).eval()
tmp = tempfile.mkdtemp(prefix="cispo_hf_generate_")
try:
    model.save_pretrained(os.path.join(tmp, "model"))
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, cfg.vocab_size, (B, P), generator=g)
    with torch.no_grad():
        x = prompts.to(torch_dev)  # the mask given: an id equal to pad_token_id is a token here, not padding
        out = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=N, min_new_tokens=N,
                             do_sample=False, output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    hf = out.sequences[:, P:].cpu().tolist()
    logits = torch.stack([z.float().cpu() for z in out.logits], 1)  # [B, N, V]
    top2 = logits.topk(2, dim=-1).values
    margin, top = (top2[..., 0] - top2[..., 1]).tolist(), top2[..., 0].abs().tolist()
    with open(os.path.join(tmp, "prompts.txt"), "w") as f:
        for b in range(B):
            f.write(" ".join(str(t) for t in prompts[b].tolist()) + "\n")
    r = subprocess.run([cispo, "generate", "--model", os.path.join(tmp, "model"), "--prompts",
                        os.path.join(tmp, "prompts.txt"), "--max-new", str(N), "--greedy", "--no-eos", "--device",
                        device, "--slots", str(B)], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: cispo generate exited %d:\n%s" % (r.returncode, r.stderr))
        sys.exit(1)
    ours = [[int(t) for t in line.split()] for line in r.stdout.strip().split("\n")]
    if len(ours) != B or any(len(o) != N for o in ours):
        print("FAIL: cispo generate printed %d lines of %s tokens, want %d of %d" % (len(ours), [len(o) for o in ours], B, N))
        sys.exit(1)
    fails, decisive, full = 0, 0, 0
    for b in range(B):
        k = next((j for j in range(N) if ours[b][j] != hf[b][j]), N)
        bound = lambda j: MARGIN + top[b][j] / 64
        decisive += sum(margin[b][j] >= bound(j) for j in range(k))
        full += k == N
        if k == N:
            print("prompt %2d: all %d tokens equal" % (b, N))
            continue
        ok = margin[b][k] < bound(k)
        fails += not ok
        print("prompt %2d: equal for %2d tokens; at token %d transformers' top-two margin %.4f (bound %.4f, top logit "
              "%.2f): %s" % (b, k, k, margin[b][k], bound(k), top[b][k], "a near-tie" if ok else "a decisive step"))
    med = sorted(m for row in margin for m in row)[B * N // 2]
    print("%d of %d prompts equal for all %d tokens; %d decisive steps compared (need >= %d); median top-two margin "
          "%.3f" % (full, B, N, decisive, B, med))
    if fails > B // 8 or decisive < B:
        print("FAIL: %d parting(s) at decisive steps (at most %d allowed)%s" %
              (fails, B // 8, "; too few decisive steps" if decisive < B else ""))
        sys.exit(1)
    print("ok: cispo's greedy generation on %s equals transformers' generate() in bf16 up to near-ties" % device)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
