# bench/hf_generate_peer.py — the peer of bench/generate_bench.c: transformers' MiniMaxForCausalLM in bf16
# (SDPA) on the same configuration, generate() with sampling at temperature 1, prompt P, N new tokens
# (min_new_tokens = N: no early stop), batch B; decode tokens/s: prefill excluded by timing a one-token
# generate first, after an untimed warm-up generate (one per process; without it the first configuration's
# one-token generate held the warm-up, 0.7-1.8 s, and subtracting it made the decode look faster).
#   python3 bench/hf_generate_peer.py configs/models/bench-1b.yaml 128 256,4096 1,16,64,256
import sys, time, torch
from transformers import MiniMaxForCausalLM
from hf_minimax import minimax_config

path, P = sys.argv[1], int(sys.argv[2])
news, batches = [int(x) for x in sys.argv[3].split(",")], [int(x) for x in sys.argv[4].split(",")]
y, kinds, cfg = minimax_config(path, P + max(news) + 16)
torch.manual_seed(0)
m = MiniMaxForCausalLM(cfg).cuda().to(torch.bfloat16).eval()
with torch.no_grad():
    x = torch.randint(0, cfg.vocab_size, (batches[0], P), device="cuda")
    m.generate(x, max_new_tokens=8, min_new_tokens=8, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
               pad_token_id=0)
    for N in news:
        for B in batches:
            x = torch.randint(0, cfg.vocab_size, (B, P), device="cuda")
            kw = dict(do_sample=True, temperature=1.0, top_p=1.0, top_k=0, pad_token_id=0)
            torch.cuda.synchronize(); t0 = time.time()
            m.generate(x, max_new_tokens=1, min_new_tokens=1, **kw)
            torch.cuda.synchronize(); t_pre = time.time() - t0
            t0 = time.time()
            m.generate(x, max_new_tokens=N, min_new_tokens=N, **kw)
            torch.cuda.synchronize(); dt = time.time() - t0 - t_pre
            print("transformers generate P=%d N=%d B=%d: %.0f tokens/s, %.3f ms/step, prefill %.2f s" %
                  (P, N, B, B * (N - 1) / dt, 1e3 * dt / (N - 1), t_pre), flush=True)
            torch.cuda.empty_cache()
