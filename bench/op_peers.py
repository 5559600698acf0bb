# bench/op_peers.py — the per-op peers of test_backend_ops' timing rows (--perf), on the same shapes: torch's
# grouped GEMM (torch._grouped_mm) for the experts' W1|W3, W2 and weight-gradient products, and SDPA (causal,
# GQA) forward and forward+backward at bench-1b's and M1's heads. bench/op_device.sh runs both in one call.
#   python3 bench/op_peers.py [--only NAME]   (--only: that grouped-GEMM row alone, e.g. "M1 W1|W3", for a profiler)
import os, sys, time, torch
import torch.nn.functional as F

dev = "cuda"
torch.manual_seed(0)


# Each row is timed as test_backend_ops --perf times ours (perf_row): two warm-up runs, then back-to-back runs until
# 0.25 s have passed (at least `reps`), a synchronisation every 4, so that both sides load the card alike and for
# as long (its clocks under the power limit depend on both); PEER_REPS=N: exactly N runs instead, with no
# synchronisation between them (the form before, about 50 ms for M1's expert products).
FIXED = int(os.environ.get("PEER_REPS", "0"))
# The grouped GEMMs' operands: PEER_DATA=uniform (the default) fills them as test_backend_ops fills ours, uniform in
# [-1, 1), so that both multiply the same kind of numbers (a tensor core's power, so the card's clock under its
# limit, depends on the bits it multiplies); PEER_DATA=randn: normal, the weights times 0.02 (the form before).
UNIFORM = os.environ.get("PEER_DATA", "uniform") == "uniform"


def operand(*shape, scale=1.0):
    if UNIFORM:
        return torch.rand(*shape, device=dev, dtype=torch.float32).mul_(2).sub_(1).to(torch.bfloat16)
    return torch.randn(*shape, device=dev, dtype=torch.bfloat16) * scale


def ms(fn, reps=20):
    try:
        fn()
    except Exception as ex:  # a shape or layout this torch does not take: said, and the others still timed
        print("torch: %s" % str(ex).splitlines()[0])
        return float("nan")
    for _ in range(2):
        fn()
    torch.cuda.synchronize()
    a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    n, t0 = 0, time.perf_counter()
    a.record()
    while True:
        fn()
        n += 1
        if FIXED:
            if n >= FIXED:
                break
        elif n >= reps and n % 4 == 0:
            torch.cuda.synchronize()
            if time.perf_counter() - t0 >= 0.25:
                break
    b.record()
    torch.cuda.synchronize()
    return a.elapsed_time(b) / n


only = sys.argv[sys.argv.index("--only") + 1] if "--only" in sys.argv else None
print("torch", torch.__version__, torch.cuda.get_device_name())
bf = torch.bfloat16
# (name, groups, rows, n, k): C[rows, n] = A[rows, k] W_g over even groups, as the op rows
for name, G, rows, n, k in [("bench-1b W1|W3", 32, 8192, 2048, 1024), ("bench-1b W2", 32, 8192, 1024, 1024),
                            ("M1 W1|W3", 8, 8192, 18432, 6144), ("M1 W2", 8, 8192, 6144, 9216)]:
    if only is not None and name != only:
        continue
    a = operand(rows, k)
    w = operand(G, k, n, scale=0.02)
    offs = torch.arange(rows // G, rows + 1, rows // G, device=dev, dtype=torch.int32)
    t = ms(lambda: torch._grouped_mm(a, w, offs=offs))
    print("torch grouped_mm %-16s G%d rows%d n%d k%d: %.3f ms, %.1f TFLOP/s" % (name, G, rows, n, k, t,
                                                                            2.0 * rows * n * k / t / 1e9))
if only is not None:
    sys.exit(0)
# the weight gradient: dW_g[k, n] = A_g^T dC_g, grouped over the rows (M1's W1 shape)
G, rows, n, k = 8, 8192, 9216, 6144
a = operand(rows, k)
dc = operand(rows, n)
offs = torch.arange(rows // G, rows + 1, rows // G, device=dev, dtype=torch.int32)
t = ms(lambda: torch._grouped_mm(a.t(), dc, offs=offs))
print("torch grouped_mm %-16s G%d rows%d n%d k%d: %.3f ms, %.1f TFLOP/s" % ("M1 W1 wgrad", G, rows, n, k, t,
                                                                        2.0 * rows * n * k / t / 1e9))
for T, H, KV in [(4096, 8, 1), (16384, 64, 8)]:
    D = 128
    q = torch.randn(1, H, T, D, device=dev, dtype=bf, requires_grad=True)
    kk = torch.randn(1, KV, T, D, device=dev, dtype=bf, requires_grad=True)
    v = torch.randn(1, KV, T, D, device=dev, dtype=bf, requires_grad=True)
    fwd_flops = 4.0 * (T * (T + 1) / 2) * H * D  # test_backend_ops' attn_flops: causal pairs
    tf = ms(lambda: F.scaled_dot_product_attention(q, kk, v, is_causal=True, enable_gqa=True))
    g = torch.randn(1, H, T, D, device=dev, dtype=bf)

    def fb():
        F.scaled_dot_product_attention(q, kk, v, is_causal=True, enable_gqa=True).backward(g)

    tfb = ms(fb, 10)
    print("torch sdpa T%d H%d KV%d D%d: forward %.3f ms %.1f TFLOP/s, backward %.3f ms %.1f TFLOP/s (forward+backward "
          "%.3f ms)" % (T, H, KV, D, tf, fwd_flops / tf / 1e9, tfb - tf, 2.5 * fwd_flops / (tfb - tf) / 1e9, tfb))
