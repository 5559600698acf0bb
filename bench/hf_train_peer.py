# bench/hf_train_peer.py — the peer of bench/model_bench.c: transformers' MiniMaxForCausalLM in bf16 with
# SDPA on the same configuration, one packed sequence of T tokens, forward+backward (labels = inputs),
# tokens/s and MFU on the FLOP count model_bench uses, peak memory.
#   python3 bench/hf_train_peer.py configs/models/bench-1b.yaml 4096,16384 [layers]
import sys, time, yaml, torch
from transformers import MiniMaxConfig, MiniMaxForCausalLM

path, Ts = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
y = yaml.safe_load(open(path))
L = int(sys.argv[3]) if len(sys.argv) > 3 else y["num_hidden_layers"]
every = y.get("full_attention_interval", 8)
if len(sys.argv) > 3:  # a slice: softmax at l % 4 == 3 (l = 1 when two layers), as model_bench --layers
    kinds = ["full_attention" if l % 4 == 3 or (L == 2 and l == 1) else "linear_attention" for l in range(L)]
else:
    kinds = ["full_attention" if l % every == every - 1 else "linear_attention" for l in range(L)]
rp = y.get("rope_parameters", {})
cfg = MiniMaxConfig(vocab_size=y["vocab_size"], hidden_size=y["hidden_size"], intermediate_size=y["intermediate_size"],
                    num_hidden_layers=L, num_attention_heads=y["num_attention_heads"],
                    num_key_value_heads=y["num_key_value_heads"], head_dim=y["head_dim"],
                    num_local_experts=y["num_local_experts"], num_experts_per_tok=y["num_experts_per_tok"],
                    layer_types=kinds, block_size=y["block_size"], max_position_embeddings=max(Ts) * 2,
                    rope_theta=rp.get("rope_theta", 1e4), full_attn_alpha_factor=y["full_attn_alpha_factor"],
                    linear_attn_alpha_factor=y["linear_attn_alpha_factor"], mlp_alpha_factor=y["mlp_alpha_factor"])
cfg._attn_implementation = "sdpa"
torch.manual_seed(0)
m = MiniMaxForCausalLM(cfg).cuda().to(torch.bfloat16)
C, H, D, KV = y["hidden_size"], y["num_attention_heads"], y["head_dim"], y["num_key_value_heads"]
A, F, E, K, V = H * D, y["intermediate_size"], y["num_local_experts"], y["num_experts_per_tok"], y["vocab_size"]
act = V * C
nsoft = 0
for k in kinds:
    act += 5 * A * C if k == "linear_attention" else A * C + 2 * KV * D * C + C * A
    act += K * 3 * C * F + E * C
    nsoft += k == "full_attention"
for T in Ts:
    x = torch.randint(0, V, (1, T), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    def step():
        m(input_ids=x, labels=x).loss.backward()
    for _ in range(2):
        step()
    torch.cuda.synchronize()
    n = 3
    t0 = time.time()
    for _ in range(n):
        step()
    torch.cuda.synchronize()
    dt = (time.time() - t0) / n
    fl = 6 * act * T + nsoft * 3 * 2 * 2 * T * T * A / 2
    print("transformers %s L=%d T=%d fwd+bwd: %.4f s/step, %.0f tokens/s, %.1f TFLOP/s, MFU %.1f%% of 790, peak memory %.1f GiB"
          % (path, L, T, dt, T / dt, fl / dt / 1e12, 100 * fl / dt / 790e12, torch.cuda.max_memory_allocated() / 2**30))
    m.zero_grad(set_to_none=True)
    torch.cuda.empty_cache()
