# bench/op_ratios.py — the per-op table of bench/op_device.sh: each timing row of test_backend_ops (--perf) next to
# torch's kernel on the same shape (bench/op_peers.py's output), TFLOP/s and the ratio cispo / torch.
#   python3 bench/op_ratios.py CISPO_LOG TORCH_LOG
import re
import sys

# (label, the test_backend_ops row: op and shape with nothing after but the tags below, torch's line, which number)
ROWS = [
    ("bench-1b W1|W3", r"^grouped_matmul_pair +G32 rows8192 n1024 k1024 lda1024 ldc2048 even +cuda", "bench-1b W1|W3", 0),
    ("bench-1b W2", r"^grouped_matmul +G32 rows8192 n1024 k1024 W\^T lda1024 ldc1024 beta0 even +cuda", "bench-1b W2", 0),
    ("M1 W1|W3", r"^grouped_matmul_pair +G8 rows8192 n9216 k6144 lda6144 ldc18432 even +cuda", "M1 W1|W3", 0),
    ("M1 W2", r"^grouped_matmul +G8 rows8192 n6144 k9216 W\^T lda9216 ldc6144 beta0 even +cuda", "M1 W2", 0),
    ("M1 W1 weight gradient", r"^grouped_matmul_wgrad +G8 rows8192 n9216 k6144 lda6144 lddc9216 write even +cuda",
     "M1 W1 wgrad", 0),
    # torch's weight gradient is bf16 (its inputs' type): the like-for-like row is ours with bf16 dW (grad_dtype=bf16)
    ("M1 W1 weight gradient, bf16 dW",
     r"^grouped_matmul_wgrad +G8 rows8192 n9216 k6144 lda6144 lddc9216 write even grad bf16 +cuda", "M1 W1 wgrad", 0),
    ("attention forward T4096 H8 KV1", r"^attention_forward +T4096 lens 4096 H8 KV1 D128 window0 +cuda",
     "sdpa T4096 H8 KV1", 0),
    ("attention backward T4096 H8 KV1", r"^attention_backward +T4096 lens 4096 H8 KV1 D128 window0 write +cuda",
     "sdpa T4096 H8 KV1", 1),
    ("attention forward T16384 H64 KV8", r"^attention_forward +T16384 lens 16384 H64 KV8 D128 window0 +cuda",
     "sdpa T16384 H64 KV8", 0),
    ("attention backward T16384 H64 KV8", r"^attention_backward +T16384 lens 16384 H64 KV8 D128 window0 write +cuda",
     "sdpa T16384 H64 KV8", 1),
]


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: op_ratios.py CISPO_LOG TORCH_LOG")
    ours = open(sys.argv[1]).read().splitlines()
    peer = open(sys.argv[2]).read().splitlines()
    print("| op | cispo TFLOP/s | torch TFLOP/s | ratio |\n|---|---|---|---|")
    for label, pat, tkey, idx in ROWS:
        a = next((l for l in ours if re.search(pat, l)), None)
        b = next((l for l in peer if tkey in l), None)
        x = float(re.search(r"([0-9.]+) TFLOP/s", a).group(1)) if a else None
        ys = re.findall(r"([0-9.]+) TFLOP/s", b) if b else []
        y = float(ys[idx]) if len(ys) > idx else None
        r = "%.2f" % (x / y) if x and y else "-"
        cells = (label.replace("|", "\\|"), "%.1f" % x if x else "-", "%.1f" % y if y else "-", r)
        print("| %s | %s | %s | %s |" % cells)
    # attention forward+backward (the issue's peer figure: SDPA's forward and backward together): both our rows' times
    # (their patterns from ROWS) against torch's forward+backward time, TFLOP/s on 3.5 times the forward's FLOPs
    pats = {label: (pat, tkey) for label, pat, tkey, _ in ROWS}
    for shape in ("T4096 H8 KV1", "T16384 H64 KV8"):
        (rf, tkey), (rb, _) = pats["attention forward " + shape], pats["attention backward " + shape]
        a = next((l for l in ours if re.search(rf, l)), None)
        c = next((l for l in ours if re.search(rb, l)), None)
        b = next((l for l in peer if tkey in l), None)
        m = re.search(r"forward\+backward ([0-9.]+) ms", b) if b else None
        if not (a and c and m):
            continue
        us_f = float(re.search(r"([0-9.]+) us/run", a).group(1))
        us_b = float(re.search(r"([0-9.]+) us/run", c).group(1))
        flops = float(re.search(r"([0-9.]+) TFLOP/s", a).group(1)) * us_f * 1e6 * 3.5
        ours_ms, peer_ms = (us_f + us_b) / 1e3, float(m.group(1))
        print("| attention forward+backward %s | %.1f | %.1f | %.2f |" % (
            shape, flops / ours_ms / 1e9, flops / peer_ms / 1e9, peer_ms / ours_ms))


main()
