# bench/hf_train_peer.py — the peer of bench/model_bench.c: transformers' MiniMaxForCausalLM in bf16 with
# SDPA on the same configuration, one packed sequence of T tokens, forward+backward (labels = inputs),
# tokens/s and MFU on the FLOP count model_bench uses, peak memory.
#   python3 bench/hf_train_peer.py configs/models/bench-1b.yaml 4096,16384 [layers]
import sys, time, torch
from transformers import MiniMaxForCausalLM
from hf_minimax import minimax_config

path, Ts = sys.argv[1], [int(t) for t in sys.argv[2].split(",")]
y, kinds, cfg = minimax_config(path, max(Ts) * 2, int(sys.argv[3]) if len(sys.argv) > 3 else None)
L = len(kinds)
torch.manual_seed(0)
torch.set_default_dtype(torch.bfloat16)  # made on the card in bf16: the M1 slice's fp32 copy would not fit the host
with torch.device("cuda"):
    m = MiniMaxForCausalLM(cfg)
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
