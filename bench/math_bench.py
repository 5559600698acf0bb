#!/usr/bin/env python3
"""bench/math_bench.py — the math checker (`cispo verify`) side by side with Math-Verify (PyPI
`math-verify`) on generated pairs, speed on the shared pairs, and pathological-input timings.

  python3 -m venv /tmp/mvenv && /tmp/mvenv/bin/pip install math-verify
  /tmp/mvenv/bin/python bench/math_bench.py --cispo build/cispo [--n 2400] [--seed 1]

Reports:
  1. generated pairs (bench/math_gen.py: true rewritings label 1, near misses label 0): accuracy
     of each checker against the label, their agreement, per category, and every kind of
     disagreement (category, label, ours, Math-Verify) with examples;
  2. verdicts/s of both on tests/data/math_pairs.tsv, one core (both pinned to CPU 0), and the ratio;
  3. time of each pathological answer (budget 10 ms each);
  4. with --mv-tests DIR (the tests/ folder of Math-Verify's source distribution:
     pip download math-verify --no-binary :all: --no-deps; tar xzf ...): both checkers against the
     expected values of Math-Verify's own test cases (many are real model outputs), defaults only.
Math-Verify is given the gold inside $..$ (its documented use) and the response as written.
"""
import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import math_gen  # noqa: E402


def pin_one_core():
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass


def escape(s):
    return s.replace("\t", "\\t").replace("\n", "\\n")


def run_cispo(cispo, rows, extra=()):
    """rows: (gold, response) -> list of (verdict, extracted), summary line."""
    with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
        f.write("gold\tresponse\n")
        for g, r in rows:
            f.write(f"{escape(g)}\t{escape(r)}\n")
        path = f.name
    cpu = sorted(os.sched_getaffinity(0))[0]
    out = subprocess.run(["taskset", "-c", str(cpu), cispo, "verify", "--tsv", path, *extra], capture_output=True, text=True, check=True)
    os.unlink(path)
    lines = out.stdout.splitlines()
    verdicts = []
    for ln in lines[:-1]:
        v, _, ext = ln.partition("\t")
        verdicts.append((int(v), ext))
    return verdicts, lines[-1]


def summary_field(summary, key):
    # "# N verdicts: ..., 0.0123 s, 98765 verdicts/s, slowest 0.123 ms"
    for part in summary.split(","):
        part = part.strip()
        if part.endswith(key):
            words = part.split()
            return float(words[1] if words[0] == "slowest" else words[0])
    return float("nan")


def mv_verdicts(pairs, wrap_gold):
    from math_verify import parse, verify

    res = []
    for g, r in pairs:
        try:
            gp = parse(f"${g}$" if wrap_gold else g)
            pp = parse(r)
            res.append(int(bool(verify(gp, pp))))
        except Exception:  # Math-Verify raising is a wrong verdict for scoring purposes
            res.append(0)
    return res


def section_generated(cispo, n, seed):
    rows = math_gen.generate(n, seed)
    ours, summary = run_cispo(cispo, [(g, r) for g, r, *_ in rows])
    mv = mv_verdicts([(g, r) for g, r, *_ in rows], wrap_gold=True)
    print(f"== 1. generated pairs: {len(rows)} (seed {seed}), {sum(r[2] for r in rows)} rewritings, "
          f"{sum(1 - r[2] for r in rows)} near misses")
    by_cat = collections.defaultdict(lambda: [0, 0, 0, 0])  # n, ours ok, mv ok, agree
    kinds = collections.defaultdict(list)
    both = collections.defaultdict(list)  # both checkers against the label
    for (g, r, label, cat, kind), (o, ext), m in zip(rows, ours, mv):
        c = by_cat[cat]
        c[0] += 1
        c[1] += o == label
        c[2] += m == label
        c[3] += o == m
        if o != m:
            kinds[(cat, kind, o, m)].append((g, r, ext))
        elif o != label:
            both[(cat, kind, o)].append((g, r, ext))
    print(f"{'category':12s} {'pairs':>5s} {'cispo':>7s} {'math-verify':>11s} {'agree':>7s}")
    tot = [0, 0, 0, 0]
    for cat, c in sorted(by_cat.items()):
        print(f"{cat:12s} {c[0]:5d} {100 * c[1] / c[0]:6.1f}% {100 * c[2] / c[0]:10.1f}% {100 * c[3] / c[0]:6.1f}%")
        tot = [a + b for a, b in zip(tot, c)]
    print(f"{'all':12s} {tot[0]:5d} {100 * tot[1] / tot[0]:6.1f}% {100 * tot[2] / tot[0]:10.1f}% {100 * tot[3] / tot[0]:6.1f}%")
    print("(cispo / math-verify columns: agreement with the generator's label; agree: with each other)")
    print(f"\ndisagreements by kind (category, pair kind, cispo, math-verify): {sum(len(v) for v in kinds.values())}")
    for (cat, kind, o, m), ex in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
        right = "cispo" if o == (kind == "rewrite") else "math-verify"
        print(f"  {cat:10s} {kind:9s} cispo={o} math-verify={m}: {len(ex):4d}  (right by label: {right})")
        for g, r, ext in ex[:2]:
            print(f"      gold {g!r}\n      resp {r[-90:]!r}  [cispo extracted {ext!r}]")
    print(f"\nboth checkers against the label: {sum(len(v) for v in both.values())}")
    for (cat, kind, o), ex in sorted(both.items(), key=lambda kv: -len(kv[1])):
        print(f"  {cat:10s} {kind:9s} both={o}: {len(ex):4d}")
        for g, r, ext in ex[:3]:
            print(f"      gold {g!r}\n      resp {r[-90:]!r}  [cispo extracted {ext!r}]")
    print(f"cispo summary: {summary}")


def section_speed(cispo, reps):
    path = os.path.join(ROOT, "tests", "data", "math_pairs.tsv")
    pairs = []
    with open(path) as f:
        next(f)
        for line in f:
            cols = line.rstrip("\n").split("\t")
            pairs.append((cols[0], cols[1]))
    _, summary = run_cispo(cispo, pairs * reps, extra=("--quiet",))
    ours = summary_field(summary, "verdicts/s")
    pin_one_core()
    t0 = time.perf_counter()
    mv_reps = max(1, reps // 50)
    for _ in range(mv_reps):
        mv_verdicts(pairs, wrap_gold=False)
    mv = len(pairs) * mv_reps / (time.perf_counter() - t0)
    print(f"\n== 2. speed on the shared pairs ({len(pairs)} pairs; cispo x{reps}, math-verify x{mv_reps}; one core)")
    print(f"cispo verify : {ours:12.0f} verdicts/s   ({summary})")
    print(f"math-verify  : {mv:12.1f} verdicts/s")
    print(f"ratio        : {ours / mv:12.0f} x")


def section_pathological(cispo):
    big = "Let me think about this step by step. " * (1 << 15)
    cases = [
        ("10^{10^{10}}", "10^{10^{10}}", "\\boxed{10^{10^{10}}}"),
        ("10^{10^{10}} vs 10", "10", "\\boxed{10^{10^{10}}}"),
        ("1000!", "1000!", "\\boxed{1000 \\cdot 999!}"),
        ("(10^9)!", "5", "\\boxed{(10^{9})!}"),
        ("2^2^2^2^2^2^2", "2", "\\boxed{2^{2^{2^{2^{2^{2^{2}}}}}}}"),
        ("10,000 nested braces", "7", "\\boxed{" + "{" * 10000 + "7" + "}" * 10001),
        ("10,000 nested parens", "1", "$" + "(" * 10000 + "1" + ")" * 10000 + "$"),
        ("5,000 nested sqrt", "2", "\\boxed{" + "\\sqrt{" * 5000 + "2" + "}" * 5001),
        ("1 MB response", "42", big + "So the answer is \\boxed{42}."),
        ("1 MB of spans", "3", "$x$ and " * (1 << 17) + "$3$"),
        ("1 MB of numbers", "1", "1, " * 350000),
    ]
    print("\n== 3. pathological answers (budget 10 ms each; best of 5 runs, the machine is shared)")
    worst = 0.0
    for name, g, r in cases:
        ms = float("inf")
        for _ in range(5):
            verdicts, summary = run_cispo(cispo, [(g, r)])
            ms = min(ms, summary_field(summary, "ms"))
        worst = max(worst, ms)
        print(f"  {name:24s} verdict {verdicts[0][0]}  {ms:8.3f} ms  ({len(r)} bytes)")
    print(f"  slowest {worst:.3f} ms: {'within' if worst < 10 else 'OVER'} the 10 ms budget")


def section_mv_tests(cispo, folder):
    import ast
    import glob

    cases = []
    for path in sorted(glob.glob(os.path.join(folder, "test_*.py"))):
        tree = ast.parse(open(path).read())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            for dec in node.decorator_list:
                if isinstance(dec, ast.Call) and getattr(dec.func, "attr", "") == "parametrize" and len(dec.args) > 1:
                    try:
                        values = ast.literal_eval(dec.args[1])
                    except ValueError:
                        continue
                    for v in values:
                        if isinstance(v, tuple) and len(v) >= 3 and isinstance(v[0], str) and isinstance(v[1], str):
                            cases.append((v[0], v[1], int(bool(v[2])), f"{os.path.basename(path)}::{node.name}"))
    ours, _ = run_cispo(cispo, [(g, r) for g, r, *_ in cases])
    mv = mv_verdicts([(g, r) for g, r, *_ in cases], wrap_gold=False)
    n = len(cases)
    o_ok = sum(o == e for (o, _), (_, _, e, _) in zip(ours, cases))
    m_ok = sum(m == e for m, (_, _, e, _) in zip(mv, cases))
    print(f"\n== 4. Math-Verify's own test cases ({n}, default options for both)")
    print(f"cispo verify agrees with the expected value on {o_ok}/{n} ({100 * o_ok / n:.1f}%), math-verify on {m_ok}/{n} ({100 * m_ok / n:.1f}%)")
    for (o, ext), m, (g, r, e, src) in zip(ours, mv, cases):
        if o != e:
            print(f"  cispo={o} math-verify={m} expected={e} [{src}] gold {g[-60:]!r} resp {r[-80:]!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cispo", default=os.path.join(ROOT, "build", "cispo"))
    ap.add_argument("--n", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--reps", type=int, default=200, help="copies of the shared pairs timed for cispo")
    ap.add_argument("--mv-tests", help="tests/ folder of the math-verify source distribution (optional section 4)")
    a = ap.parse_args()
    try:
        import math_verify  # noqa: F401
    except ImportError:
        sys.exit("math_bench: the Python package math-verify is missing: python3 -m venv /tmp/mvenv && "
                 "/tmp/mvenv/bin/pip install math-verify, then run this script with /tmp/mvenv/bin/python")
    import logging

    logging.disable(logging.WARNING)  # Math-Verify logs every timeout and parse failure
    section_generated(a.cispo, a.n, a.seed)
    section_speed(a.cispo, a.reps)
    section_pathological(a.cispo)
    if a.mv_tests:
        section_mv_tests(a.cispo, a.mv_tests)


if __name__ == "__main__":
    main()
