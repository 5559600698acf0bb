#!/usr/bin/env bash
# scripts/demo_results.sh — regenerates the numbers of docs/demo-results.md: runs `cispo demo` for each
# documented seed (and loss), then rewrites the tables between the marker comments
#     <!-- demo_results:NAME begin --> ... <!-- demo_results:NAME end -->
# of docs/demo-results.md from the runs' metrics.jsonl. Nothing else of the page is touched.
#
#     scripts/demo_results.sh                      # seeds 1 2 3, CISPO: the demo and seed tables
#     scripts/demo_results.sh --losses "cispo grpo dapo" --seeds 1   # also the loss comparison table
#     scripts/demo_results.sh --tables-only        # rewrite the tables from the runs already in --runs
#
# Options: --cispo BIN (default build/cispo), --runs DIR (default runs/demo-results; one run directory
# per seed and loss, DIR/seed<N>-<loss>), --seeds "1 2 3", --losses "cispo", --doc FILE, --tables-only.
# Extra key=value arguments after `--` go to every `cispo demo`. Runs one after another (each takes
# minutes on 2 cores); the wall times and the machine's load average go into the tables.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cispo="$root/build/cispo" runs="$root/runs/demo-results" seeds="1 2 3" losses="cispo"
doc="$root/docs/demo-results.md" tables_only=0 extra=()
while [ $# -gt 0 ]; do
    case "$1" in
    --cispo) cispo=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seeds) seeds=$2; shift 2 ;;
    --losses) losses=$2; shift 2 ;;
    --doc) doc=$2; shift 2 ;;
    --tables-only) tables_only=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo_results.sh: unknown argument '$1' (--help lists the options)" >&2; exit 2 ;;
    esac
done
case "$runs" in /*) ;; *) runs="$PWD/$runs" ;; esac
mkdir -p "$runs"

if [ "$tables_only" = 0 ]; then
    [ -x "$cispo" ] || { echo "demo_results.sh: $cispo not found: build first (scripts/build.sh) or pass --cispo BIN" >&2; exit 2; }
    for seed in $seeds; do
        for loss in $losses; do
            dir="$runs/seed$seed-$loss"
            echo "== cispo demo seed=$seed loss=$loss -> $dir"
            load0=$(cut -d' ' -f1 /proc/loadavg)
            commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
            git -C "$root" diff --quiet HEAD -- . 2>/dev/null || commit="$commit + uncommitted changes"
            t0=$SECONDS
            (cd "$runs" && "$cispo" demo seed="$seed" loss="$loss" out="$dir" overwrite=true "${extra[@]}") \
                > "$dir.log" 2>&1 || { echo "demo_results.sh: the run failed; see $dir.log" >&2; exit 1; }
                        load1=$(cut -d' ' -f1 /proc/loadavg)
            printf '{"wall_s": %s, "load_start": %s, "load_end": %s, "commit": "%s"}\n' \
                "$((SECONDS - t0))" "$load0" "$load1" \
                "$commit" > "$dir.time.json"
            tail -4 "$dir.log"
        done
    done
fi

exec python3 - "$doc" "$runs" "$seeds" "$losses" <<'PY'
import json, math, os, re, sys

doc, runs, seeds, losses = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4].split()

def load(seed, loss):
    d = f"{runs}/seed{seed}-{loss}"
    path = f"{d}/metrics.jsonl"
    if not os.path.isfile(path):
        return None
    rows = [json.loads(l) for l in open(path) if l.strip().endswith("}")]
    held = {r["step"]: r["heldout_accuracy"] for r in rows if "heldout_accuracy" in r}
    acc = {r["step"]: r["accuracy"] for r in rows if "accuracy" in r}
    t = json.load(open(f"{d}.time.json")) if os.path.isfile(f"{d}.time.json") else {}
    n_eval = "?"
    if os.path.isfile(f"{d}/config.yaml"):
        m = re.search(r"^eval_size: (\d+)", open(f"{d}/config.yaml").read(), re.M)
        n_eval = m.group(1) if m else "?"
    return {"held": held, "acc": acc, "rows": {r["step"]: r for r in rows}, "time": t, "n_eval": n_eval}

def pct(x):
    return f"{100 * x:.1f}%"

def mean(xs):
    return sum(xs) / len(xs) if xs else float("nan")

tables = {}
base = "cispo" if "cispo" in losses else losses[0]
runs_by_seed = {s: load(s, base) for s in seeds}
first = seeds[0]
r = runs_by_seed.get(first)
if r and r["held"]:
    last = max(r["held"])
    b, a = r["held"][0], r["held"][last]
    acc = r["acc"]
    n = max(acc) if acc else 0
    w = max(1, n // 16)
    tables["demo"] = "\n".join([
        f"| | held-out accuracy (greedy, {r['n_eval']} problems) |",
        "|---|---|",
        f"| after SFT, before RL | **{pct(b)}** |",
        f"| after {last} {base.upper()} steps | **{pct(a)}** ({100 * (a - b):+.1f} points) |",
        "",
        f"Training-set sampled accuracy (temperature 1): {pct(mean([acc[s] for s in acc if s <= w]))} over steps 1-{w}, "
        f"{pct(mean([acc[s] for s in acc if s > n - w]))} over steps {n - w + 1}-{n}.",
    ] + ([f"", f"Measured by scripts/demo_results.sh on a build of commit {r['time']['commit']}."]
         if r["time"].get("commit") else []))
lines = ["| seed | after SFT | after RL | gain | `cispo demo` wall time (load average at start, end) |",
         "|---|---|---|---|---|"]
gains = []
for s in seeds:
    r = runs_by_seed.get(s)
    if not r or not r["held"]:
        continue
    last = max(r["held"])
    b, a = r["held"][0], r["held"][last]
    gains.append(a - b)
    t = r["time"]
    wall = f"{t['wall_s']:.0f} s ({t['load_start']:.1f}, {t['load_end']:.1f})" if t else "-"
    lines.append(f"| {s}{' (the demo)' if s == '1' else ''} | {pct(b)} | {pct(a)} | {100 * (a - b):+.1f} | {wall} |")
if gains:
    lines += ["", f"Mean gain over {len(gains)} seed{'s' if len(gains) > 1 else ''}: {100 * mean(gains):+.1f} points."]
    tables["seeds"] = "\n".join(lines)
# train/rollout agreement over every RL step of every run
pear, mabs, nrun = [], [], 0
for s in seeds:
    for l in losses:
        r = load(s, l)
        if not r:
            continue
        nrun += 1
        pear += [x["agree_pearson"] for x in r["rows"].values() if "agree_pearson" in x]
        mabs += [x["agree_max_abs"] for x in r["rows"].values() if "agree_max_abs" in x]
if pear and mabs:
    tables["agreement"] = (f"Train/rollout agreement (docs/rl.md): one engine does both, so the rollout's log pi_old and the "
                           f"training forward's log-probs of the same tokens (first minibatch, before any update) agree to "
                           f"Pearson correlation >= {math.floor(min(pear) * 1e12) / 1e12:.12f} and max |diff| <= {max(mabs):.2g} on every step of "
                           f"{'the run' if nrun == 1 else f'all {nrun} runs'}.")
# the loss comparison: held-out accuracy per evaluation, one column per loss, on the first seed
cmp = {l: load(first, l) for l in losses}
cmp = {l: v for l, v in cmp.items() if v and v["held"]}
if len(cmp) > 1:
    steps = sorted(set().union(*[set(v["held"]) for v in cmp.values()]))
    names = list(cmp)
    out = ["| RL step | " + " | ".join(n.upper() for n in names) + " |", "|---|" + "---|" * len(names)]
    for s in steps:
        out.append(f"| {s} | " + " | ".join(pct(cmp[n]["held"][s]) if s in cmp[n]["held"] else "-" for n in names) + " |")
    tables["losses"] = "\n".join(out)

text = open(doc).read()
done = []
for name, body in tables.items():
    pat = re.compile(rf"(<!-- demo_results:{name} begin -->\n)(.*?)(<!-- demo_results:{name} end -->)", re.S)
    if pat.search(text):
        text = pat.sub(lambda m: m.group(1) + body + "\n" + m.group(3), text)
        done.append(name)
open(doc, "w").write(text)
print(f"demo_results.sh: rewrote {', '.join(done) or 'no'} table(s) of {doc} from {runs}")
for name in tables:
    if name not in done:
        print(f"  (no <!-- demo_results:{name} begin/end --> markers in {doc}; table '{name}' not written)")
PY
