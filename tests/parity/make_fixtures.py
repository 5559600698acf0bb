"""Parity fixtures: tiny MiniMaxForCausalLM models in fp32 from Hugging Face transformers.

For each configuration below (together they vary every config field the network reads), builds
the model with non-trivial random weights, saves it with save_pretrained, and records, for a
random token sequence, transformers' per-token log-probs, the mean cross-entropy loss, and the
gradient of that loss for every parameter (under the checkpoint's per-expert names).

    python3 tests/parity/make_fixtures.py [OUT_DIR [NAME...]]   (default tests/fixtures/parity, every case)

Each OUT_DIR/<name>/ holds config.json, model.safetensors (written by save_pretrained),
tokens.txt (whitespace-separated ids), expected.safetensors with tensors "logprobs" [n-1],
"loss" [1] and "grad.<parameter name>", and greedy.txt: a prompt (the first 4 tokens, line 1), transformers' greedy
continuation of 12 tokens with its cache (line 2) and the log-prob of each chosen token at its step
(line 3: decode-time numerics, which for "dynamic"/"longrope" RoPE differ from a full forward). tests/test_parity.c and
tests/test_infer.c compare cispo against them.
"""
import json, math, os, sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import MiniMaxConfig, MiniMaxForCausalLM

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures", "parity")

L = "linear_attention"
F = "full_attention"
# the base of the variant cases below: head_dim 16 (8 rotary pairs), GQA 2, softmax layers at l = 0, 2
SMALL = dict(vocab_size=53, hidden_size=20, num_attention_heads=2, head_dim=16, num_key_value_heads=1,
             num_hidden_layers=3, layer_types=[F, L, F], num_local_experts=3, num_experts_per_tok=2,
             intermediate_size=12, block_size=4)
CASES = {
    # name: (config kwargs, number of tokens)
    "basic": (dict(vocab_size=97, hidden_size=32, num_attention_heads=4, head_dim=8, num_key_value_heads=2,
                   num_hidden_layers=2, layer_types=[L, F], num_local_experts=4, num_experts_per_tok=2,
                   intermediate_size=24, block_size=8), 21),
    # A = H*D = 48 != C = 24; MQA (KV=1); K=1; block 5 does not divide T; residual factors; theta; eps
    "wide_heads": (dict(vocab_size=61, hidden_size=24, num_attention_heads=3, head_dim=16, num_key_value_heads=1,
                        num_hidden_layers=3, layer_types=[F, L, L], num_local_experts=3, num_experts_per_tok=1,
                        intermediate_size=16, block_size=5, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                        rms_norm_eps=1e-6, full_attn_alpha_factor=1.7, full_attn_beta_factor=0.6,
                        linear_attn_alpha_factor=2.1, linear_attn_beta_factor=0.8,
                        mlp_alpha_factor=1.3, mlp_beta_factor=0.9), 17),
    # M1's pattern (softmax at l = 7), alpha = (2N)^(1/4), E=5 K=3, block 4, theta 1e7
    "deep": (dict(vocab_size=83, hidden_size=20, num_attention_heads=2, head_dim=12, num_key_value_heads=2,
                  num_hidden_layers=8, layer_types=[F if i % 8 == 7 else L for i in range(8)],
                  num_local_experts=5, num_experts_per_tok=3, intermediate_size=12, block_size=4,
                  rope_parameters={"rope_type": "default", "rope_theta": 1e7},
                  full_attn_alpha_factor=16 ** 0.25, linear_attn_alpha_factor=16 ** 0.25, mlp_alpha_factor=16 ** 0.25),
             30),
    # block larger than T; H=8 with D=4; GQA 2; tied embeddings
    "block_large_tied": (dict(vocab_size=40, hidden_size=16, num_attention_heads=8, head_dim=4, num_key_value_heads=4,
                              num_hidden_layers=3, layer_types=[L, L, F], num_local_experts=2, num_experts_per_tok=2,
                              intermediate_size=20, block_size=64, tie_word_embeddings=True, rms_norm_eps=1e-5), 19),
    # no layer_types and no head_dim in the file: transformers' defaults (full at even l, D = C/H)
    "defaults": (dict(vocab_size=50, hidden_size=24, num_attention_heads=4, num_key_value_heads=2,
                      num_hidden_layers=4, num_local_experts=3, num_experts_per_tok=2, intermediate_size=16,
                      block_size=3), 14),
    # --- fields that select numerics variants (small: C <= 24, V <= 60) ---
    # sliding window 5 < T (keys j with 0 <= i - j < 5), two softmax layers; gelu (erf) activation
    "sliding_window": (dict(SMALL, layer_types=[F, L, F], sliding_window=5, hidden_act="gelu"), 21),
    # rope types (transformers' ROPE_INIT_FUNCTIONS), each with another activation
    "rope_linear": (dict(SMALL, rope_parameters={"rope_type": "linear", "factor": 2.5, "rope_theta": 1000.0},
                         hidden_act="gelu_new"), 19),
    # dynamic NTK: T = 20 > max_position_embeddings = 12 rescales the base; the greedy run (4 + 12
    # tokens) grows past 12 step by step
    "rope_dynamic": (dict(SMALL, max_position_embeddings=12, hidden_act="quick_gelu",
                          rope_parameters={"rope_type": "dynamic", "factor": 2.0, "rope_theta": 500.0}), 20),
    # yarn: ramp over pairs 0..3 of 8 (beta_fast 4, beta_slow 0.5, theta 100), attention factor from factor 4
    "rope_yarn": (dict(SMALL, max_position_embeddings=64, hidden_act="relu",
                       rope_parameters={"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16,
                                        "beta_fast": 4.0, "beta_slow": 0.5, "rope_theta": 100.0}), 19),
    # yarn without truncation, factor null (= max_position_embeddings / original), mscale ratio
    "rope_yarn_mscale": (dict(SMALL, max_position_embeddings=48, layer_types=[F, F, L],
                              rope_parameters={"rope_type": "yarn", "factor": None, "original_max_position_embeddings": 16,
                                               "mscale": 1.0, "mscale_all_dim": 0.5, "truncate": False,
                                               "beta_fast": 8.0, "rope_theta": 300.0}), 17),
    # longrope: T = 20 > original 12 takes long_factor (the greedy prompt of 4 starts with short_factor)
    "rope_longrope": (dict(SMALL, max_position_embeddings=24, hidden_act="tanh",
                           rope_parameters={"rope_type": "longrope", "original_max_position_embeddings": 12,
                                            "short_factor": [1.0, 1.1, 1.3, 1.6, 2.0, 2.5, 3.1, 3.8],
                                            "long_factor": [1.0, 1.5, 2.2, 3.0, 4.5, 6.0, 8.0, 11.0],
                                            "rope_theta": 1000.0}), 20),
    # llama3: pair 0 kept (wavelength < 16), pairs 1-2 smoothed, the rest / 8
    "rope_llama3": (dict(SMALL, max_position_embeddings=256, hidden_act="mish",
                         rope_parameters={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                          "high_freq_factor": 4.0, "original_max_position_embeddings": 64,
                                          "rope_theta": 10000.0}), 18),
    # proportional: half the pairs rotated (partial_rotary_factor 0.5), the other half frequency 0
    "rope_proportional": (dict(SMALL, hidden_act="gelu_pytorch_tanh",
                               rope_parameters={"rope_type": "proportional", "partial_rotary_factor": 0.5,
                                                "factor": 2.0, "rope_theta": 50.0}), 18),
    # pad_token_id (its embedding row gets no gradient from lookups) with tied embeddings (the LM head's
    # part remains); the pad id is put into the token sequence
    "pad_tied": (dict(SMALL, pad_token_id=7, tie_word_embeddings=True, hidden_act="sigmoid"), 18),
}


def randomise(model, gen):
    """Weights large enough that every part of the network matters to the output."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norm weights around 1
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p.shape[-1]
                scale = 1.5 if name.endswith("mlp.gate.weight") else 1.0
                p.copy_(torch.randn(p.shape, generator=gen) * scale / math.sqrt(fan_in))


def checkpoint_grads(model, cfg):
    """Gradients under the names save_pretrained writes (per-expert w1/w2/w3, block_sparse_moe.gate)."""
    out = {}
    Fi = cfg.intermediate_size
    for name, p in model.named_parameters():
        g = p.grad.detach().float().contiguous()
        if name.endswith("mlp.experts.gate_up_proj"):
            base = name[: -len("mlp.experts.gate_up_proj")] + "block_sparse_moe.experts."
            for e in range(g.shape[0]):
                out[f"grad.{base}{e}.w1.weight"] = g[e, :Fi].contiguous()
                out[f"grad.{base}{e}.w3.weight"] = g[e, Fi:].contiguous()
        elif name.endswith("mlp.experts.down_proj"):
            base = name[: -len("mlp.experts.down_proj")] + "block_sparse_moe.experts."
            for e in range(g.shape[0]):
                out[f"grad.{base}{e}.w2.weight"] = g[e].contiguous()
        elif name.endswith("mlp.gate.weight"):
            out["grad." + name.replace("mlp.gate.weight", "block_sparse_moe.gate.weight")] = g
        else:
            out["grad." + name] = g
    if cfg.tie_word_embeddings:  # one tensor serves both; its gradient is the sum, stored once
        out.pop("grad.lm_head.weight", None)
    return out


def make(name, kwargs, n_tokens, seed):
    gen = torch.Generator().manual_seed(seed)
    cfg = MiniMaxConfig(**kwargs)
    cfg._attn_implementation = "eager"
    model = MiniMaxForCausalLM(cfg).float()
    randomise(model, gen)
    model.train(False)
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    cj = json.load(open(os.path.join(d, "config.json")))
    if name == "defaults":  # exercise the absent-key defaults of the loader
        for k in ("layer_types", "head_dim"):
            cj.pop(k, None)
        json.dump(cj, open(os.path.join(d, "config.json"), "w"), indent=2)
    ids = torch.randint(0, cfg.vocab_size, (1, n_tokens), generator=gen)
    if cfg.pad_token_id is not None:  # the pad id occurs in the sequence and the greedy prompt
        ids[0, 2::5] = cfg.pad_token_id
    with open(os.path.join(d, "tokens.txt"), "w") as f:
        f.write(" ".join(str(int(t)) for t in ids[0]) + "\n")
    model.zero_grad()
    out = model(input_ids=ids)
    logits = out.logits.float()[0]                      # [n, V]
    logp_all = torch.log_softmax(logits, dim=-1)
    logp = logp_all[:-1].gather(1, ids[0, 1:, None])[:, 0]  # log p(t_i | t_<i), i = 1..n-1
    loss = -logp.mean()
    loss.backward()
    tensors = {"logprobs": logp.detach().contiguous(), "loss": loss.detach().reshape(1)}
    tensors.update(checkpoint_grads(model, cfg))
    save_file(tensors, os.path.join(d, "expected.safetensors"))
    with torch.no_grad():
        prompt = ids[:, :4]
        out = model.generate(prompt, max_new_tokens=12, min_new_tokens=12, do_sample=False, use_cache=True,
                             eos_token_id=None, pad_token_id=0, output_logits=True, return_dict_in_generate=True)
    gen_ids = out.sequences
    step_logp = [torch.log_softmax(lg[0].float(), dim=-1)[gen_ids[0, 4 + i]].item() for i, lg in enumerate(out.logits)]
    with open(os.path.join(d, "greedy.txt"), "w") as f:
        f.write(" ".join(str(int(t)) for t in prompt[0]) + "\n")
        f.write(" ".join(str(int(t)) for t in gen_ids[0, 4:]) + "\n")
        f.write(" ".join(f"{x:.9g}" for x in step_logp) + "\n")
    print(f"{name}: T={n_tokens} loss={loss.item():.6f} logp[0..2]={[round(x, 6) for x in logp[:3].tolist()]} "
          f"tensors={len(tensors)}")


def main():
    torch.manual_seed(0)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}")
    only = set(sys.argv[2:])
    unknown = only - set(CASES)
    if unknown:
        sys.exit(f"unknown case(s) {sorted(unknown)}; the cases are {list(CASES)}")
    for i, (name, (kw, n)) in enumerate(CASES.items()):  # seeds follow the table order
        if not only or name in only:
            make(name, kw, n, 1000 + i)


if __name__ == "__main__":
    main()
