# bench/sdpa_backends.py — which kernel torch's SDPA runs on the attention rows' shapes (causal GQA, bf16, D 128, at
# bench-1b's and M1's heads) and how fast each of its backends is there: the default choice, then cuDNN's fused
# attention, FlashAttention and the memory-efficient kernel forced one at a time, forward and backward in TFLOP/s
# (the causal FLOP count bench/op_peers.py uses). Tells which kernel the attention rows' SDPA peer is.
#   python3 bench/sdpa_backends.py
import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

print("torch %s, cuDNN %s, %s" % (torch.__version__, torch.backends.cudnn.version(), torch.cuda.get_device_name()))
for T, H, KV in ((4096, 8, 1), (16384, 64, 8)):
    q = torch.randn(1, H, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(1, KV, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(1, KV, T, 128, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    flops = 4.0 * T * T * 128 * H / 2  # causal forward; the backward counts 2.5 times that
    for be in (None, SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION):
        name = "default" if be is None else be.name
        try:
            with sdpa_kernel([be]) if be is not None else torch.enable_grad():
                fwd = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
                for _ in range(3):
                    fwd().backward(torch.ones_like(q))
                ev = [torch.cuda.Event(enable_timing=True) for _ in range(3)]
                ev[0].record()
                for _ in range(5):
                    o = fwd()
                ev[1].record()
                for _ in range(5):
                    o = fwd()
                    o.backward(o.detach())
                ev[2].record()
                torch.cuda.synchronize()
            f = ev[0].elapsed_time(ev[1]) / 5
            b = ev[1].elapsed_time(ev[2]) / 5 - f
            print("T %d H %d KV %d %s: forward %.1f TFLOP/s, backward %.1f" % (T, H, KV, name, flops / f / 1e9,
                                                                               2.5 * flops / b / 1e9))
        except Exception as ex:  # a backend this torch or card does not take here: said, the others still timed
            print("T %d H %d KV %d %s: not taken (%s)" % (T, H, KV, name, str(ex).splitlines()[0][:100]))
