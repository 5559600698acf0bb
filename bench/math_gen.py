#!/usr/bin/env python3
"""bench/math_gen.py — generates (gold, response, label) pairs for the math checker: true rewritings
(label 1) and near misses (label 0) of random numbers, fractions, surds, polynomials, trig and
exponential identities, sets, intervals and unions, tuples, equations, inequalities, percentages
and matrices. Responses are wrapped the way models write them (\\boxed{}, "The final answer is",
"Answer:", $$..$$, bare). The label is right by construction: a rewriting is an identity, a near
miss changes the value (a sign, an element, an end's openness, an order, a coefficient) or is one
of the documented non-answers (a rounded decimal of an irrational value; a reordered bare list,
which the gold's form makes ordered).

  python3 bench/math_gen.py --n 2400 --seed 1 > /tmp/pairs.tsv
Columns: gold, response, label, category, kind.
"""
import argparse
import math
import random
from fractions import Fraction

WRAPS = [
    "So the answer is $\\boxed{%s}$.",
    "<think>Let me work through it carefully and check the arithmetic twice.</think>\nThe answer is $\\boxed{%s}$.",
    "The final answer is $%s$. I hope it is correct.",
    "Answer: $%s$",
    "Putting it together:\n$$\n\\boxed{%s}\n$$",
    "Therefore the result is \\(%s\\).",
]


def frac_tex(q: Fraction, style="frac"):
    p, d = q.numerator, q.denominator
    if d == 1:
        return str(p)
    sign = "-" if p < 0 else ""
    p = abs(p)
    if style == "slash":
        return f"{sign}{p}/{d}"
    if style == "dfrac":
        return f"{sign}\\dfrac{{{p}}}{{{d}}}"
    return f"{sign}\\frac{{{p}}}{{{d}}}"


def terminating(q: Fraction):
    d = q.denominator
    while d % 2 == 0:
        d //= 2
    while d % 5 == 0:
        d //= 5
    return d == 1


def dec(q: Fraction, places):
    return f"{float(q):.{places}f}"


class Gen:
    def __init__(self, rng):
        self.r = rng

    def nz(self, lo=-9, hi=9):
        while True:
            v = self.r.randint(lo, hi)
            if v:
                return v

    # each returns (gold, true rewrites list, near misses list)
    def integer(self):
        n = self.r.choice([self.r.randint(-50, 50), self.r.randint(1000, 9999999)])
        true = [str(n), f"{n}.0", f"\\frac{{{2 * n}}}{{2}}"]
        if abs(n) >= 1000:
            true.append(f"{n:,}")
            true.append(f"{n:,}".replace(",", "{,}"))
        miss = [str(n + 1), str(-n) if n else "1", str(n * 10) if n else "10", f"{n}.5"]
        return str(n), true, miss

    def fraction(self):
        q = Fraction(self.nz(-20, 20), self.r.randint(2, 12))
        while q.denominator == 1:
            q = Fraction(self.nz(-20, 20), self.r.randint(2, 12))
        k = self.r.randint(2, 5)
        true = [frac_tex(q, "slash"), frac_tex(q, "dfrac"), f"\\frac{{{q.numerator * k}}}{{{q.denominator * k}}}"]
        true.append(dec(q, 6) if terminating(q) or True else None)  # rounds the value at 6 places
        if terminating(q):
            true.append(str(float(q)))
        miss = [frac_tex(Fraction(q.denominator, q.numerator)), frac_tex(q + Fraction(1, q.denominator)), frac_tex(-q),
                f"{float(q) + 3 * 10 ** -4:.4f}"]
        return frac_tex(q), true, miss

    def surd(self):
        a, b = self.r.randint(2, 6), self.r.choice([2, 3, 5, 6, 7, 10, 11])
        gold = f"{a}\\sqrt{{{b}}}"
        true = [f"\\sqrt{{{a * a * b}}}", f"\\sqrt{{{b}}} \\cdot {a}"]
        if b < 10:
            true.append(f"{a}\\sqrt{b}")  # \sqrt10 would be sqrt(1)*0
        # a rounded decimal of the irrational value is a near miss (docs/verifiers.md, rule 4)
        miss = [f"{a}\\sqrt{{{b + 1}}}", f"\\sqrt{{{a * b}}}", f"{a + 1}\\sqrt{{{b}}}", f"{a * math.sqrt(b):.2f}9",
                f"{a * math.sqrt(b):.6f}"]
        return gold, true, miss

    def polynomial(self):
        a, b = self.nz(), self.nz()
        s, p = a + b, a * b

        def lin(c):
            return f"x + {c}" if c > 0 else f"x - {-c}"

        gold = f"({lin(a)})({lin(b)})"
        expanded = "x^2" + (f" + {s}x" if s > 0 else f" - {-s}x" if s < 0 else "") + (f" + {p}" if p > 0 else f" - {-p}")
        true = [expanded, f"({lin(b)})({lin(a)})", f"x(x + {s}) + {p}".replace("+ -", "- ")]
        miss = [f"({lin(a)})({lin(-b)})", expanded.replace("x^2", "2x^2"), f"x^2 + {s}x + {p + 1}".replace("+ -", "- ")]
        if a != b:
            miss.append(f"({lin(a)})^2")
        return gold, true, miss

    def trig(self):
        k = self.r.randint(2, 5)
        cases = [
            (f"\\sin^2 x", [f"1 - \\cos^2 x", f"\\frac{{1 - \\cos 2x}}{{2}}"], [f"1 + \\cos^2 x", f"\\cos^2 x"]),
            (f"\\sin({2 * k}x)", [f"2\\sin({k}x)\\cos({k}x)"], [f"2\\sin({k}x)", f"\\sin({k}x)\\cos({k}x)"]),
            (f"\\tan^2 x + 1", [f"\\sec^2 x", f"\\frac{{1}}{{\\cos^2 x}}"], [f"\\csc^2 x", f"\\tan^2 x"]),
            (f"e^{{{k}x}}", [f"(e^x)^{k}", f"\\exp({k}x)"], [f"e^{{{k + 1}x}}", f"{k}e^x"]),
            (f"\\ln({k}x)", [f"\\ln {k} + \\ln x"], [f"{k}\\ln x", f"\\ln x"]),
        ]
        return self.r.choice(cases)

    def set_(self):
        els = self.r.sample(range(-15, 16), self.r.randint(2, 5))
        gold = "\\{" + ", ".join(map(str, els)) + "\\}"
        perm = els[:]
        self.r.shuffle(perm)
        true = ["\\{" + ", ".join(map(str, perm)) + "\\}", ", ".join(map(str, perm))]
        changed = perm[:]
        changed[0] += 1
        miss = ["\\{" + ", ".join(map(str, changed)) + "\\}", "\\{" + ", ".join(map(str, perm[1:])) + "\\}"]
        return gold, true, miss

    def interval(self):
        a = Fraction(self.r.randint(-20, 10), self.r.choice([1, 1, 2, 4]))
        b = a + self.r.randint(1, 15)
        lo, hi = self.r.choice("[("), self.r.choice("])")
        gold = f"{lo}{frac_tex(a)}, {frac_tex(b)}{hi}"
        op1 = "\\le" if lo == "[" else "<"
        op2 = "\\le" if hi == "]" else "<"
        true = [f"\\left{lo} {frac_tex(a, 'dfrac')}, {frac_tex(b)} \\right{hi}", f"{lo}{float(a)}, {float(b)}{hi}",
                f"{frac_tex(a)} {op1} x {op2} {frac_tex(b)}"]
        flip = {"[": "(", "(": "["}[lo]
        miss = [f"{flip}{frac_tex(a)}, {frac_tex(b)}{hi}", f"{lo}{frac_tex(a)}, {frac_tex(b + 1)}{hi}", f"{lo}{frac_tex(-b)}, {frac_tex(-a)}{hi}"]
        if lo == "(" and hi == ")":
            miss.pop(2)
        return gold, true, miss

    def union(self):
        a = self.r.randint(-10, 0)
        b = a + self.r.randint(1, 5)
        c = b + self.r.randint(1, 5)
        gold = f"(-\\infty, {a}) \\cup ({b}, {c}]"
        true = [f"({b}, {c}] \\cup (-\\infty, {a})", f"(-\\infty,{a})\\cup({b},{c}]"]
        miss = [f"(-\\infty, {a}] \\cup ({b}, {c}]", f"(-\\infty, {a}) \\cup ({b}, {c + 1}]", f"({b}, {c}]"]
        return gold, true, miss

    def tuple_(self):
        n = self.r.randint(2, 4)
        xs = [Fraction(self.nz(-12, 12), self.r.choice([1, 1, 2, 3])) for _ in range(n)]
        gold = "(" + ", ".join(frac_tex(x) for x in xs) + ")"
        true = ["(" + ",".join(frac_tex(x, "slash") for x in xs) + ")", "\\left(" + ", ".join(frac_tex(x, "dfrac") for x in xs) + "\\right)"]
        sw = xs[:]
        i = self.r.randrange(n - 1)
        sw[i], sw[i + 1] = sw[i + 1], sw[i]
        miss = ["(" + ", ".join(frac_tex(x) for x in xs[:-1]) + ")", "(" + ", ".join(frac_tex(x) for x in [-xs[0]] + xs[1:]) + ")"]
        if sw != xs:
            miss.append("(" + ", ".join(frac_tex(x) for x in sw) + ")")
        return gold, true, miss

    def equation(self):
        m, c = self.nz(), self.nz()
        gold = f"y = {m}x + {c}".replace("+ -", "- ")
        true = [f"y = {c} + {m}x".replace("+ -", "- "), f"{m}x - y + {c} = 0".replace("+ -", "- "), f"{-2 * m}x + 2y = {2 * c}"]
        miss = [f"y = {m}x - {c}".replace("- -", "+ "), f"y = {c}x + {m}".replace("+ -", "- "), f"{m}x + y + {c} = 0".replace("+ -", "- ")]
        if m == c:
            miss.pop(1)
        return gold, true, miss

    def inequality(self):
        a = self.nz(-20, 20)
        op, rev = self.r.choice([("<", ">"), ("\\le", "\\ge"), (">", "<"), ("\\ge", "\\le")])
        gold = f"x {op} {a}"
        true = [f"{a} {rev} x", f"-x {rev} {-a}"]
        bad = {"<": "\\le", "\\le": "<", ">": "\\ge", "\\ge": ">"}[op]
        miss = [f"x {rev} {a}", f"x {bad} {a}", f"x {op} {a + 1}"]
        return gold, true, miss

    def percent(self):
        p = self.r.randint(1, 99)
        gold = f"{p}\\%"
        true = [f"{p}", f"{p}\\%", f"{p / 100}", f"{p} percent"]
        miss = [f"{p + 1}\\%", f"{p / 1000}", f"{p * 10}"]
        return gold, true, miss

    def matrix(self):
        v = [self.r.randint(-9, 9) for _ in range(4)]
        gold = f"\\begin{{pmatrix}} {v[0]} & {v[1]} \\\\ {v[2]} & {v[3]} \\end{{pmatrix}}"
        true = [f"\\begin{{bmatrix}}{v[0]}&{v[1]}\\\\{v[2]}&{v[3]}\\end{{bmatrix}}",
                f"\\begin{{pmatrix}} {2 * v[0]}/2 & {v[1]} \\\\ {v[2]} & {v[3]}.0 \\end{{pmatrix}}"]
        miss = [f"\\begin{{pmatrix}} {v[0]} & {v[2]} \\\\ {v[1]} & {v[3]} \\end{{pmatrix}}", f"\\begin{{pmatrix}} {v[0] + 1} & {v[1]} \\\\ {v[2]} & {v[3]} \\end{{pmatrix}}"]
        if v[1] == v[2]:
            miss.pop(0)
        return gold, true, miss


    def assignment(self):
        q = Fraction(self.nz(-30, 30), self.r.choice([1, 2, 3, 4]))
        v = self.r.choice("xyabkn")
        gold = frac_tex(q)
        true = [f"{v} = {frac_tex(q)}", f"{v}={frac_tex(q, 'dfrac')}", f"{v} = {frac_tex(q * 2)}/2" if q.denominator == 1 else f"{v} = {frac_tex(q)}"]
        miss = [f"{v} = {frac_tex(q + 1)}", f"{v} = {frac_tex(-q)}", f"{frac_tex(q)} {v}"]
        return gold, true, miss

    def pm(self):
        a, b = self.r.randint(1, 9), self.r.choice([2, 3, 5, 6, 7])
        gold = f"{a} \\pm \\sqrt{{{b}}}"
        true = [f"{a} - \\sqrt{{{b}}}, {a} + \\sqrt{{{b}}}", f"x = {a} \\pm \\sqrt{{{b}}}", f"\\{{{a}+\\sqrt{{{b}}}, {a}-\\sqrt{{{b}}}\\}}"]
        miss = [f"{a} + \\sqrt{{{b}}}", f"{a} \\pm \\sqrt{{{b + 1}}}", f"-{a} \\pm \\sqrt{{{b}}}"]
        return gold, true, miss

    def solutions(self):
        xs = sorted(self.r.sample(range(-12, 13), 2))
        # the gold's form decides order (docs/verifiers.md, rule 3): a bare list "a, b" is ordered,
        # "x = a, b" and "a \text{ or } b" are sets of solutions
        if self.r.random() < 0.5:
            gold = f"{xs[0]}, {xs[1]}"
            true = [f"x = {xs[0]} \\text{{ or }} x = {xs[1]}", f"{xs[0]},{xs[1]}", f"x = {xs[0]}, {xs[1]}", f"\\{{{xs[1]}, {xs[0]}\\}}"]
            miss = [f"x = {xs[0]}", f"{xs[1]}, {xs[0]}", f"{-xs[0]}, {xs[1]}" if xs[0] else f"1, {xs[1]}"]
        else:
            gold = f"x = {xs[0]}, {xs[1]}"
            true = [f"x = {xs[1]} \\text{{ or }} x = {xs[0]}", f"{xs[1]}, {xs[0]}", f"x = {xs[1]}, {xs[0]}", f"\\{{{xs[1]}, {xs[0]}\\}}"]
            miss = [f"x = {xs[0]}", f"{xs[0]}, {xs[1] + 1}", f"{-xs[0]}, {xs[1]}" if xs[0] else f"1, {xs[1]}"]
        return gold, true, miss

    def complex_(self):
        a, b = self.nz(), self.nz()
        sb = f"+ {b}" if b > 0 else f"- {-b}"
        gold = f"{a} {sb}i"
        true = [f"{b}i + {a}".replace("+ -", "- "), f"{a}+{b}i".replace("+-", "-"), f"\\frac{{{2 * a} {sb.replace(' ', '')}\\cdot 2i}}{{2}}"]
        miss = [f"{a} {'-' if b > 0 else '+'} {abs(b)}i", f"{b} + {a}i".replace("+ -", "- ") if a != b else f"{a + 1} + {b}i", f"{a} {sb}"]
        return gold, true, miss

    def sci(self):
        m, e = self.r.randint(11, 99), self.r.randint(-6, 8)
        gold = f"{m / 10} \\times 10^{{{e}}}"
        val = Fraction(m, 10) * Fraction(10) ** e
        plain = f"{float(val):.{max(0, 1 - e)}f}" if e < 6 else str(int(val))
        true = [plain, f"{m / 10}e{e}", f"{m}\\times 10^{{{e - 1}}}"]
        miss = [f"{m / 10} \\times 10^{{{e + 1}}}", f"{(m + 1) / 10} \\times 10^{{{e}}}"]
        return gold, true, miss

    def units(self):
        n = self.r.randint(2, 500)
        unit = self.r.choice(["cm", "meters", "dollars", "degrees", "units", "square units"])
        gold = str(n)
        true = [f"{n} \\text{{ {unit}}}", f"{n}\\,\\text{{{unit}}}", f"{n}^\\circ" if unit == "degrees" else f"{n} {unit}",
                f"\\${n}" if unit == "dollars" else f"{n}\\text{{{unit}}}"]
        miss = [f"{n + 1} \\text{{ {unit}}}", f"{n * 100} \\text{{ {unit}}}"]
        return gold, true, miss

    def radical(self):
        b = self.r.choice([2, 3, 5, 6, 7])
        k = self.r.randint(1, 5)
        gold = f"\\frac{{{k}\\sqrt{{{b}}}}}{{{b}}}" if k > 1 else f"\\frac{{\\sqrt{{{b}}}}}{{{b}}}"
        true = [f"\\frac{{{k}}}{{\\sqrt{{{b}}}}}", f"{k}/\\sqrt{{{b}}}", f"\\frac{{{k}}}{{\\sqrt{b}}}"]
        miss = [f"\\frac{{{k}}}{{\\sqrt{{{b + 1}}}}}", f"\\frac{{{k}\\sqrt{{{b}}}}}{{{b + 1}}}", f"{k}\\sqrt{{{b}}}"]
        return gold, true, miss


CATEGORIES = ["assignment", "pm", "solutions", "complex_", "sci", "units", "radical", "integer", "fraction", "surd", "polynomial", "trig", "set_", "interval", "union", "tuple_", "equation", "inequality",
              "percent", "matrix"]


def generate(n, seed):
    rng = random.Random(seed)
    g = Gen(rng)
    rows = []
    while len(rows) < n:
        cat = CATEGORIES[len(rows) // 2 % len(CATEGORIES)]
        gold, true, miss = getattr(g, cat)()
        true = [t for t in true if t]
        for label, pool in ((1, true), (0, miss)):
            pred = rng.choice(pool)
            wrap = rng.choice(WRAPS)
            # a set written without braces cannot go in a plain "$..$" list context unchanged; keep it as written
            rows.append((gold, wrap % pred if "%s" in wrap else pred, label, cat.rstrip("_"), "rewrite" if label else "near_miss"))
    return rows[:n]


def escape(s):
    return s.replace("\t", "\\t").replace("\n", "\\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print("gold\tresponse\tlabel\tcategory\tkind")
    for gold, resp, label, cat, kind in generate(a.n, a.seed):
        print(f"{escape(gold)}\t{escape(resp)}\t{label}\t{cat}\t{kind}")


if __name__ == "__main__":
    main()
