#!/usr/bin/env python3
"""bench/precision_plot.py PAIRS PNG: the scatter plot of bench/precision_bench.c's pairs (rollout
probability against training probability of every sampled token), one panel per LM-head precision, with
each panel's Pearson correlation. Needs matplotlib (pip install matplotlib)."""
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: precision_plot.py PAIRS PNG")
    heads = {}
    with open(sys.argv[1]) as f:
        for ln, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 3:
                sys.exit(f"{sys.argv[1]}:{ln}: expected 'head rollout_p train_p', got {line!r}")
            h = heads.setdefault(parts[0], ([], []))
            h[0].append(float(parts[1]))
            h[1].append(float(parts[2]))
    fig, axes = plt.subplots(1, len(heads), figsize=(5 * len(heads), 5), squeeze=False)
    for ax, (name, (r, t)) in zip(axes[0], sorted(heads.items(), key=lambda kv: kv[0] != "fp32")):
        n = len(r)
        mr, mt = sum(r) / n, sum(t) / n
        cov = sum((a - mr) * (b - mt) for a, b in zip(r, t))
        vr = sum((a - mr) ** 2 for a in r)
        vt = sum((b - mt) ** 2 for b in t)
        rho = cov / (vr * vt) ** 0.5 if vr > 0 and vt > 0 else 1.0
        ax.scatter(t, r, s=1, alpha=0.3)
        ax.plot([0, 1], [0, 1], color="gray", linewidth=0.5)
        ax.set_xlabel("training-side probability (fp32 head)")
        ax.set_ylabel(f"rollout-side probability ({name} head)")
        ax.set_title(f"{name} LM head: Pearson {rho:.5f}, {n} tokens")
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
