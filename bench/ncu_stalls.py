# bench/ncu_stalls.py — the SASS instructions where a kernel's warps stall most, from Nsight Compute's source page
# (`ncu --import R.ncu-rep --page source --csv --print-source sass > R.csv`, a report collected with the
# SourceCounters section: PC sampling; or `--print-source cuda`: by line of CUDA source). Prints the columns found,
# then the instructions (or lines) holding the most samples (their address or line, text, samples and share) until
# they cover COVER of all samples.
#   python3 bench/ncu_stalls.py R.csv [COVER, default 0.8]
import csv, sys

path = sys.argv[1]
cover = float(sys.argv[2]) if len(sys.argv) > 2 else 0.8
with open(path, newline="") as f:
    lines = [l for l in f if l.startswith('"')]  # the CSV rows (ncu prefixes notes with ==PROF== and the like)
# the header is the first row naming an address or source column (ncu may print other rows before it); the
# instructions are the rows after it with as many fields
parsed = list(csv.reader(lines))
head = next((i for i, r in enumerate(parsed) if any(c.strip().lower() in ("address", "source", "sass") for c in r)),
            None)
if head is None:
    sys.exit(f"ncu_stalls: no header row (Address, Source) among {len(parsed)} CSV rows in {path}")
cols = [c.strip() for c in parsed[head]]
rows = [dict(zip(cols, r)) for r in parsed[head + 1:] if len(r) == len(cols)]
if not rows:
    sys.exit(f"ncu_stalls: no instruction rows after the header in {path}")
print("columns:", ", ".join(cols))


def num(v):
    try:
        return float(str(v).replace(",", ""))
    except ValueError:
        return None


# the samples column: "Warp Stall Sampling (All Samples)" where ncu names it so, else the first sampling column
pick = [c for c in cols if "Sampling" in c and "All" in c] or [c for c in cols if "Sampling" in c or "Samples" in c]
if not pick:
    sys.exit("ncu_stalls: no sampling column (was the report collected with --section SourceCounters?)")
col = pick[0]
text = next((c for c in cols if c.lower() in ("source", "sass")), None)
addr = next((c for c in cols if c.lower() in ("address", "pc", "offset", "line", "# line", "#")), None)
# the per-reason columns beside it (stall_*), for the top rows
reasons = [c for c in cols if c.startswith("stall_") or ("stall" in c.lower() and "Sampling" not in c)]
rows = [r for r in rows if num(r.get(col)) is not None]
total = sum(num(r[col]) for r in rows)
if total <= 0:
    sys.exit(f"ncu_stalls: column '{col}' holds no samples")
print(f"{len(rows)} instructions, {total:.0f} samples in '{col}'")
acc = 0.0
for r in sorted(rows, key=lambda r: -num(r[col])):
    s = num(r[col])
    acc += s
    top = sorted(((num(r[c]) or 0.0, c) for c in reasons), reverse=True)[:2]
    why = ", ".join(f"{c} {v:.0f}" for v, c in top if v > 0)
    print(f"{r.get(addr, '') if addr else '':>8} {s:8.0f} {100 * s / total:5.1f}%  {(r.get(text) or '')[:70]:70s} {why}")
    if acc >= cover * total:
        break
