#!/usr/bin/env python3
# bench/lightning_bench.py — lightning attention: our CUDA kernels vs FLA chunk_simple_gla vs the
# PyTorch block loop of transformers' MiniMaxLightningAttention, forward and forward+backward, plus
# decode-step latency and bandwidth. Prints one table last.
#
# Run on the GPU machine from the repo root (FLA travels as wheels in .whl/, see bench/NOTES.md):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && \
#   PYTHONPATH=/tmp/site python3 bench/lightning_bench.py [--quick] [--skip-hf]
# It builds build/liblightning.so from kernels/cuda/lightning*.cu with nvcc (sm_90a) and calls it
# through ctypes on torch tensors.
#
# FLOP count (the table's TFLOP/s): the dense matmuls of the chunked algorithm with chunk B = 64 (FLA's
# chunk size), per token and head: forward 4 B D + 4 D^2 (Q K^T, P V, Q S, K^T V), backward
# 10 B D + 10 D^2 (recomputed Q K^T, dO V^T, dP K, dP^T Q, P^T dO, and the five state products).
import argparse
import ctypes
import math
import os
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "build", "liblightning.so")
SRCS = ["kernels/cuda/lightning.cu", "kernels/cuda/lightning_decode.cu", "kernels/common.c"]


def build_lib():
    os.makedirs(os.path.dirname(LIB), exist_ok=True)
    deps = [os.path.join(ROOT, s) for s in SRCS] + [
        os.path.join(ROOT, "kernels/cuda", f) for f in os.listdir(os.path.join(ROOT, "kernels/cuda"))]
    if os.path.exists(LIB) and all(os.path.getmtime(LIB) > os.path.getmtime(d) for d in deps):
        return
    cmd = ["nvcc", "-shared", "-Xcompiler", "-fPIC", "-O3", "-std=c++17", "-I", ROOT, "-D_GNU_SOURCE",
           "-gencode=arch=compute_90a,code=sm_90a", "--use_fast_math", "-o", LIB] + [os.path.join(ROOT, s) for s in SRCS]
    print("building:", " ".join(cmd), flush=True)
    subprocess.check_call(cmd)


class Tuning(ctypes.Structure):  # backend_tuning_t (kernels/backend.h)
    _fields_ = [("lightning_cps", ctypes.c_int), ("lightning_prof_skip", ctypes.c_int), ("attn_fwd_rows", ctypes.c_int)]


class Ours:
    def __init__(self):
        build_lib()
        L = ctypes.CDLL(LIB)
        P, I, S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
        L.lightning_workspace_bytes_cuda.argtypes = [I, I, I, I, P]
        L.lightning_workspace_bytes_cuda.restype = S
        L.lightning_forward_cuda.argtypes = [P] * 8 + [I] * 5 + [P, P, S, P]
        L.lightning_backward_cuda.argtypes = [P] * 11 + [I] * 5 + [P, P, S, P]
        L.lightning_decode_cuda.argtypes = [P] * 6 + [I] * 3 + [P]
        for f in (L.lightning_forward_cuda, L.lightning_backward_cuda, L.lightning_decode_cuda):
            f.restype = I
        self.L = L
        self.ws = None
        self.tune = Tuning(0, 0, 0)  # the context's knobs: segment length, profiling stages

    def workspace(self, T, nseq, H, D):
        n = self.L.lightning_workspace_bytes_cuda(T, nseq, H, D, ctypes.addressof(self.tune))
        if n and (self.ws is None or self.ws.numel() < n):
            self.ws = torch.empty(n, dtype=torch.uint8, device="cuda")
        return (self.ws.data_ptr() if n else None), n

    @staticmethod
    def _p(t):
        return None if t is None else t.data_ptr()

    def forward(self, o, q, k, v, slopes, cu, state_in=None, state_out=None):
        T, H, D = q.shape
        nseq = cu.numel() - 1
        ws, wsb = self.workspace(T, nseq, H, D)
        st = torch.cuda.current_stream().cuda_stream
        rc = self.L.lightning_forward_cuda(o.data_ptr(), self._p(state_out), q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                           self._p(state_in), slopes.data_ptr(), cu.data_ptr(), nseq, H, D, 64, T,
                                           ctypes.addressof(self.tune), ws, wsb, st)
        assert rc == 0

    def backward(self, dq, dk, dv, do, q, k, v, slopes, cu, state_in=None, dstate_in=None):
        T, H, D = q.shape
        nseq = cu.numel() - 1
        ws, wsb = self.workspace(T, nseq, H, D)
        st = torch.cuda.current_stream().cuda_stream
        rc = self.L.lightning_backward_cuda(dq.data_ptr(), dk.data_ptr(), dv.data_ptr(), self._p(dstate_in),
                                            do.data_ptr(), q.data_ptr(), k.data_ptr(), v.data_ptr(),
                                            self._p(state_in), slopes.data_ptr(), cu.data_ptr(), nseq, H, D, 64, T,
                                            ctypes.addressof(self.tune), ws, wsb, st)
        assert rc == 0

    def decode(self, o, state, q, k, v, slopes):
        B, H, D = q.shape
        st = torch.cuda.current_stream().cuda_stream
        assert self.L.lightning_decode_cuda(o.data_ptr(), state.data_ptr(), q.data_ptr(), k.data_ptr(),
                                            v.data_ptr(), slopes.data_ptr(), B, H, D, st) == 0


def slopes_for(H, layer=0, n_layers=80):
    # HF get_slope_rate: base^(h+1) * (1 - l/(N-1+1e-5) + 1e-5)
    base = 1 / (2 ** (8 / H))
    factor = 1 - layer / (n_layers - 1 + 1e-5) + 1e-5
    return (torch.tensor([base ** (h + 1) for h in range(H)], dtype=torch.float32) * factor).cuda()


def hf_block_lightning(q, k, v, slope, block_size=256):
    """The core loop of transformers 5.17 MiniMaxLightningAttention.forward (no cache), transcribed:
    q, k, v [B, H, T, D]; slope [H, 1, 1]; decay buffers as its decay_factors()."""
    B, H, T, D = q.shape
    r = torch.arange(block_size, device=q.device) + 1
    query_decay = torch.exp(-slope * r[:, None])
    key_decay = torch.exp(-slope * (block_size - r[:, None]))
    diag = r[:, None] - r[None, :]
    diag = slope * diag[None, None]
    diag = torch.exp(torch.where(diag >= 0, -diag, float("-inf")))
    # the module's buffers follow the model's dtype (bf16 here), as after model.to(torch.bfloat16)
    slope, query_decay, key_decay, diag = (x.to(q.dtype) for x in (slope, query_decay, key_decay, diag))
    kv = torch.zeros(B, H, D, D, device=q.device).to(v)
    outs = []
    for i in range((T + block_size - 1) // block_size):
        s, e = i * block_size, min((i + 1) * block_size, T)
        m = e - s
        qi, ki, vi = q[:, :, s:e], k[:, :, s:e], v[:, :, s:e]
        intra = torch.matmul(torch.matmul(qi, ki.transpose(-1, -2)) * diag[:, :, :m, :m], vi)
        inter = torch.matmul(qi * query_decay[:, :m], kv)
        outs.append(inter + intra)
        kv = kv * torch.exp(-slope * m) + torch.matmul((ki * key_decay[:, -m:]).transpose(-1, -2), vi)
    return torch.cat(outs, dim=-2)


def time_ms(fn, reps, warm=2, before=None):
    for _ in range(warm):
        if before: before()
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        if before: before()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b))
    return statistics.median(ts)


def rel(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


def flops(T, H, D, B=64):
    fwd = T * H * (4 * B * D + 4 * D * D)
    return fwd, fwd + T * H * (10 * B * D + 10 * D * D)


def ceilings():
    n = 8192
    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    ms = time_ms(lambda: a @ b, 10, warm=3)
    tf = 2 * n ** 3 / ms / 1e9
    x = torch.empty(2 ** 30, dtype=torch.uint8, device="cuda").random_()
    y = torch.empty_like(x)
    ms = time_ms(lambda: y.copy_(x), 10, warm=3)
    bw = 2 * x.numel() / ms / 1e6  # GB/s, bytes read + written
    del a, b, x, y
    return tf, bw


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="T=4K and 16K only, fewer repeats")
    ap.add_argument("--skip-hf", action="store_true")
    ap.add_argument("--skip-fla", action="store_true")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--cps", nargs="*", default=[], help="also time these segment lengths (chunks per segment, 0 = unsegmented; log only)")
    ap.add_argument("--prof", action="store_true",
                    help="only ours at T=64K, forward, with stages left out (the lightning_prof_skip knob)")
    args = ap.parse_args()
    if args.prof:
        return prof(args)
    torch.manual_seed(0)
    dev = torch.cuda.get_device_name()
    ours = Ours()
    tf_peak, bw_peak = ceilings()
    print(f"card: {dev}; measured bf16 matmul {tf_peak:.0f} TFLOP/s, copy {bw_peak:.0f} GB/s", flush=True)

    fla = None
    if not args.skip_fla:
        try:
            from fla.ops.simple_gla import chunk_simple_gla as fla
        except Exception as e:  # noqa: BLE001
            print("FLA not importable:", e)

    rows = []
    shapes = [("M1", 64, 128), ("bench-1b", 8, 128)]
    Ts = [4096, 16384] if args.quick else [4096, 16384, 65536]
    for name, H, D in shapes:
        for T in Ts:
            # enough input sets that one pass over them is well past the 50 MB L2
            per = T * H * D * 2 * 4
            nset = max(1, math.ceil(400e6 / per)) if T * H < 2 ** 22 else 1
            sets = []
            for _ in range(nset):
                q, k, v, do = (torch.rand(T, H, D, device="cuda").sub_(0.5).bfloat16() for _ in range(4))
                sets.append((q, k, v, do))
            slopes = slopes_for(H)
            cu = torch.tensor([0, T], dtype=torch.int32, device="cuda")
            o = torch.empty(T, H, D, device="cuda", dtype=torch.bfloat16)
            dq, dk, dv = (torch.empty_like(o) for _ in range(3))
            it = [0]

            def cur():
                s = sets[it[0] % nset]
                it[0] += 1
                return s

            def ours_f():
                q, k, v, _ = cur()
                ours.forward(o, q, k, v, slopes, cu)

            def ours_fb():
                q, k, v, do = cur()
                ours.forward(o, q, k, v, slopes, cu)
                ours.backward(dq, dk, dv, do, q, k, v, slopes, cu)

            res = {"shape": name, "H": H, "D": D, "T": T}
            res["ours_f"] = time_ms(ours_f, args.reps)
            res["ours_fb"] = time_ms(ours_fb, args.reps)
            for cps in args.cps:  # other segment lengths (chunks per segment; 0 = unsegmented)
                ours.tune.lightning_cps = int(cps) if int(cps) > 0 else -1
                res[f"cps{cps}_f"] = time_ms(ours_f, args.reps)
                res[f"cps{cps}_fb"] = time_ms(ours_fb, args.reps)
                ours.tune.lightning_cps = 0
            if fla is not None:
                g = -slopes
                fsets = [tuple(t.detach().unsqueeze(0).requires_grad_(i < 3) for i, t in enumerate(s)) for s in sets]
                fit = [0]

                def fla_f():
                    q, k, v, _ = fsets[fit[0] % nset]
                    fit[0] += 1
                    with torch.no_grad():
                        fla(q, k, v, g_gamma=g, scale=1.0)

                def fla_fb():
                    q, k, v, do = fsets[fit[0] % nset]
                    fit[0] += 1
                    out, _ = fla(q, k, v, g_gamma=g, scale=1.0)
                    out.backward(do)

                def clear():
                    for s in fsets:
                        for t in s[:3]:
                            t.grad = None

                res["fla_f"] = time_ms(fla_f, args.reps)
                res["fla_fb"] = time_ms(fla_fb, args.reps, before=clear)
                # same function? compare on the first set (FLA computes in its own chunks; bf16 both)
                q, k, v, do = sets[0]
                fq, fk, fv, fdo = fsets[0]
                clear()
                out, _ = fla(fq, fk, fv, g_gamma=g, scale=1.0)
                out.backward(fdo)
                ours.forward(o, q, k, v, slopes, cu)
                ours.backward(dq, dk, dv, do, q, k, v, slopes, cu)
                torch.cuda.synchronize()
                res["err"] = max(rel(o, out[0]), rel(dq, fq.grad[0]), rel(dk, fk.grad[0]), rel(dv, fv.grad[0]))
                clear()
                del fsets
            if not args.skip_hf and not (T > 16384 and H == 64 and args.quick):
                q, k, v, do = sets[0]
                hq, hk, hv = (t.permute(1, 0, 2).unsqueeze(0).contiguous().requires_grad_() for t in (q, k, v))
                hdo = do.permute(1, 0, 2).unsqueeze(0).contiguous()
                sl = slopes[:, None, None]
                hreps = 3

                def hf_f():
                    with torch.no_grad():
                        hf_block_lightning(hq, hk, hv, sl)

                def hf_fb():
                    hf_block_lightning(hq, hk, hv, sl).backward(hdo)

                def hclear():
                    for t in (hq, hk, hv):
                        t.grad = None

                print(res, flush=True)
                try:
                    res["hf_f"] = time_ms(hf_f, hreps, warm=1)
                    res["hf_fb"] = time_ms(hf_fb, hreps, warm=1, before=hclear)
                except Exception as e:  # noqa: BLE001
                    print("HF block loop failed:", e)
                del hq, hk, hv, hdo
            rows.append(res)
            print(res, flush=True)
            del sets
            torch.cuda.empty_cache()

    # ---- decode
    drows = []
    for name, H, D in shapes:
        slopes = slopes_for(H)
        for B in (1, 4, 16, 64, 256):
            # rotate among enough state buffers that each step reads its state from DRAM, not L2
            nrot = max(1, math.ceil(256e6 / (B * H * D * D * 4)))
            states = [torch.randn(B, H, D, D, device="cuda") * 0.1 for _ in range(nrot)]
            q, k, v = (torch.rand(B, H, D, device="cuda").sub_(0.5).bfloat16() for _ in range(3))
            o = torch.empty_like(q)
            n = max(50, nrot)
            steps = lambda: [ours.decode(o, states[i % nrot], q, k, v, slopes) for i in range(n)]  # noqa: E731
            try:  # a graph of n steps, so launch overhead stays out of the per-step latency
                steps()
                torch.cuda.synchronize()
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    steps()
                ms = time_ms(graph.replay, 5) / n
            except Exception as e:  # noqa: BLE001
                print("graph capture failed, timing launches:", e)
                ms = time_ms(steps, 5) / n
            by = B * H * D * D * 4 * 2 + 4 * B * H * D * 2
            drows.append((name, H, D, B, ms * 1e3, by / ms / 1e6))
            del states

    print()
    print(f"card: {dev}; bf16 matmul ceiling {tf_peak:.0f} TFLOP/s (measured 8192^3), copy {bw_peak:.0f} GB/s")
    print("FLOPs: dense matmuls of the chunked algorithm, B=64: fwd 4BD+4D^2, bwd 10BD+10D^2 per token-head")
    hdr = ("| shape | T | ours fwd ms | TFLOP/s | FLA fwd ms | HF fwd ms | ours f+b ms | TFLOP/s | %peak | "
           "FLA f+b ms | x FLA f+b | HF f+b ms | rel.diff vs FLA |")
    print(hdr)
    print("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        ff, fb = flops(r["T"], r["H"], r["D"])
        tf_f = ff / r["ours_f"] / 1e9
        tf_fb = fb / r["ours_fb"] / 1e9
        g = lambda k, fmt="{:.3f}": fmt.format(r[k]) if k in r else "-"  # noqa: E731
        ratio = f"{r['fla_fb'] / r['ours_fb']:.2f}x" if "fla_fb" in r else "-"
        ratio_f = f" ({r['fla_f'] / r['ours_f']:.2f}x)" if "fla_f" in r else ""
        print(f"| {r['shape']} H={r['H']} D={r['D']} | {r['T']} | {r['ours_f']:.3f} | {tf_f:.0f} | "
              f"{g('fla_f')}{ratio_f} | {g('hf_f', '{:.1f}')} | {r['ours_fb']:.3f} | {tf_fb:.0f} | "
              f"{100 * tf_fb / tf_peak:.0f}% | {g('fla_fb')} | {ratio} | {g('hf_fb', '{:.1f}')} | {g('err', '{:.1e}')} |")
    print()
    print("| decode shape | batch | us/step | GB/s (state read+write, q k v o) | % of copy bw |")
    print("|---|---|---|---|---|")
    for name, H, D, B, us, gbs in drows:
        print(f"| {name} H={H} D={D} | {B} | {us:.1f} | {gbs:.0f} | {100 * gbs / bw_peak:.0f}% |")


def prof(args):
    """Places the forward kernel's time: the same launch with a stage left out (results are wrong
    then; only the time is read). 1: output warps idle, 2: state warps idle, 4: no output stores."""
    ours = Ours()
    print(f"card: {torch.cuda.get_device_name()}")
    print("| shape | T | variant | fwd ms | DRAM GB/s (bytes the variant moves) |")
    print("|---|---|---|---|---|")
    for name, H, D in [("M1", 64, 128), ("bench-1b", 8, 128)]:
        T = 65536
        q, k, v = (torch.rand(T, H, D, device="cuda").sub_(0.5).bfloat16() for _ in range(3))
        o = torch.empty_like(q)
        slopes = slopes_for(H)
        cu = torch.tensor([0, T], dtype=torch.int32, device="cuda")
        for skip, label in [("0", "full"), ("4", "no o stores"), ("1", "output warps idle"),
                            ("2", "state warps idle"), ("3", "both idle: loads only"), ("7", "loads only, no stores")]:
            ours.tune.lightning_prof_skip = int(skip)
            ms = time_ms(lambda: ours.forward(o, q, k, v, slopes, cu), args.reps)
            nbytes = T * H * D * 2 * (3 + (0 if int(skip) & 5 else 1))
            print(f"| {name} H={H} | {T} | {label} | {ms:.3f} | {nbytes / ms / 1e6:.0f} |", flush=True)
        ours.tune.lightning_prof_skip = 0


if __name__ == "__main__":
    main()
