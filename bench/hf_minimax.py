# bench/hf_minimax.py — transformers' MiniMaxConfig for a cispo model preset (configs/models/*.yaml), shared by
# the peers (hf_train_peer.py, hf_generate_peer.py) and tests/gpu/hf_generate_gpu.py.
#   y, kinds, cfg = minimax_config(path, max_pos, layers=None)
# layers given: a slice of that many layers, softmax attention at l % 4 == 3 (l = 1 when two), as
# bench/model_bench.c --layers; else the preset's layers with softmax every full_attention_interval.
import yaml
from transformers import MiniMaxConfig


def minimax_config(path, max_pos, layers=None):
    y = yaml.safe_load(open(path))
    L = layers or y["num_hidden_layers"]
    every = y.get("full_attention_interval", 8)
    if layers:
        kinds = ["full_attention" if l % 4 == 3 or (L == 2 and l == 1) else "linear_attention" for l in range(L)]
    else:
        kinds = ["full_attention" if l % every == every - 1 else "linear_attention" for l in range(L)]
    rp = y.get("rope_parameters", {})
    cfg = MiniMaxConfig(vocab_size=y["vocab_size"], hidden_size=y["hidden_size"],
                        intermediate_size=y["intermediate_size"], num_hidden_layers=L,
                        num_attention_heads=y["num_attention_heads"], num_key_value_heads=y["num_key_value_heads"],
                        head_dim=y["head_dim"], num_local_experts=y["num_local_experts"],
                        num_experts_per_tok=y["num_experts_per_tok"], layer_types=kinds, block_size=y["block_size"],
                        max_position_embeddings=max_pos, rope_theta=rp.get("rope_theta", 1e4),
                        full_attn_alpha_factor=y["full_attn_alpha_factor"],
                        linear_attn_alpha_factor=y["linear_attn_alpha_factor"], mlp_alpha_factor=y["mlp_alpha_factor"])
    cfg._attn_implementation = "sdpa"
    return y, kinds, cfg
