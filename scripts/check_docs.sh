#!/usr/bin/env bash
# scripts/check_docs.sh — keeps the written design honest (a ctest through tests/cmake/lint.cmake):
#   (a) every docs/<name>.md the sources cite exists, and so does every quoted section heading after it
#       (docs/model.md "MoE block", docs/model.md's "FLOPs per token" section);
#   (b) every name on a `// defines:` header line (and its indented continuation lines) of a .c/.h/.cu/.cuh
#       file still appears in that file or a sibling with the same stem (foo.h <-> foo.c, foo.cu), else at
#       least somewhere in the same folder, outside the defines lines themselves. Braces expand (model_lightning_{forward,backward}), `*` is a wildcard
#       (model_*_scratch_floats); words without an underscore are read as prose and not checked;
#   (c) the file table of each folder README (rows `| `name` ... | what |`, names relative to the folder,
#       globs allowed) lists only files that exist and every tracked source file of the folder.
# Prints file:line: problem for each finding and exits 1 when there is any. Run from anywhere:
#     scripts/check_docs.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 - "$@" <<'PY'
import fnmatch, os, re, subprocess, sys

def repo_files():
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             check=True, capture_output=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        files = []
        for root, dirs, names in os.walk("."):
            dirs[:] = [d for d in dirs if not d.startswith(".") and not d.startswith("build")]
            files += [os.path.relpath(os.path.join(root, n)) for n in names]
    return sorted(f for f in set(files) if os.path.isfile(f))

FILES = repo_files()
problems = []

def report(path, line, msg):
    problems.append(f"{path}:{line}: {msg}")

def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()

# ---- (a) citations of docs/*.md and their quoted sections ----
CITING = re.compile(r"\.(c|h|cu|cuh|py|sh|yaml|yml|cmake|md|txt|json)$|(^|/)CMakeLists\.txt$")
CITE = re.compile(r"docs/([A-Za-z0-9_.-]+?)\.md(?:'s)?(?:[ \t]+\"([^\"\n]+)\")?")
headings = {}

def doc_headings(doc):
    if doc not in headings:
        hs = set()
        if os.path.isfile(doc):
            in_code = False
            for ln in read(doc).splitlines():
                if ln.startswith("```"):
                    in_code = not in_code
                m = None if in_code else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", ln)
                if m:
                    hs.add(m.group(1))
        headings[doc] = hs
    return headings[doc]

n_cites = 0
for path in FILES:
    if not CITING.search(path) or "/fixtures/" in path:
        continue
    for i, ln in enumerate(read(path).splitlines(), 1):
        for m in CITE.finditer(ln):
            doc = f"docs/{m.group(1)}.md"
            n_cites += 1
            if not os.path.isfile(doc):
                report(path, i, f"cites {doc}, which does not exist")
            elif m.group(2) and m.group(2) not in doc_headings(doc):
                report(path, i, f"cites section \"{m.group(2)}\" of {doc}, which has no heading of that name")

# ---- (b) `// defines:` lines ----
SRC = re.compile(r"\.(c|h|cu|cuh)$")
IDENT = re.compile(r"[A-Za-z_*][A-Za-z0-9_*]*")

def defines_block(lines):
    """[(line number, text after '// defines:' or '//')] of the defines lines and their continuations."""
    block, on = [], False
    for i, ln in enumerate(lines, 1):
        if ln.startswith("// defines:"):
            block.append((i, ln[len("// defines:"):]))
            on = True
        elif on and re.match(r"//\s{6,}\S", ln):
            block.append((i, ln[2:]))
        else:
            on = False
    return block

def names_of(text):
    t = re.sub(r"(\w)<[^<>]*>", r"\1", text)          # template arguments: kernel<D, REV>
    prev = None
    while prev != t:                                    # parenthesised remarks, innermost first
        prev, t = t, re.sub(r"\([^()]*\)", " ", t)
    brace = re.compile(r"([\w*]*)\{([^{}]*)\}([\w*]*)")
    while brace.search(t):                              # a_{b,c}_d -> a_b_d a_c_d
        t = brace.sub(lambda m: " ".join(m.group(1) + x.strip() + m.group(3) for x in m.group(2).split(",")), t)
    names = []
    for w in IDENT.findall(t):
        if "_" in w.strip("*") and w.strip("*_"):
            names.append(w)
    return names

folder_text = {}

def folder_corpus(d):
    """The sources of one folder without their defines lines: a name declared in a shared header or
    defined in another file of the folder is misplaced, not stale."""
    if d not in folder_text:
        parts = []
        for f in sources:
            if os.path.dirname(f) == d:
                lines = read(f).splitlines()
                skip = {i for i, _ in defines_block(lines)}
                parts += [ln for i, ln in enumerate(lines, 1) if i not in skip]
        folder_text[d] = "\n".join(parts)
    return folder_text[d]

n_defines = 0
sources = [f for f in FILES if SRC.search(f)]
by_stem = {}
for f in sources:
    by_stem.setdefault(os.path.splitext(f)[0], []).append(f)
for path in sources:
    lines = read(path).splitlines()
    block = defines_block(lines)
    if not block:
        continue
    skip = {i for i, _ in block}
    corpus = "\n".join(ln for i, ln in enumerate(lines, 1) if i not in skip)
    for sib in by_stem[os.path.splitext(path)[0]]:
        if sib != path:
            corpus += "\n" + read(sib)
    for i, text in block:
        for name in names_of(text):
            n_defines += 1
            pat = r"(?<![A-Za-z0-9_])" + re.escape(name).replace(r"\*", r"\w*") + r"(?![A-Za-z0-9_])"
            if not re.search(pat, corpus) and not re.search(pat, folder_corpus(os.path.dirname(path))):
                sibs = [s for s in by_stem[os.path.splitext(path)[0]] if s != path]
                where = path + (" or " + ", ".join(sibs) if sibs else "")
                report(path, i, f"defines: names '{name}', which no longer appears in {where} nor elsewhere in its folder")

# ---- (c) folder README file tables ----
FOLDERS = ["base", "kernels", "model", "rl", "sandbox", "datasets", "trainer", "tests", "bench", "scripts",
           "configs"]
LISTED = re.compile(r"\.(c|h|cu|cuh|py|sh|yaml|yml|cmake|md)$|(^|/)CMakeLists\.txt$")
n_rows = 0
for folder in FOLDERS:
    if not os.path.isdir(folder):
        continue
    readme = f"{folder}/README.md"
    if not os.path.isfile(readme):
        report(readme, 1, f"missing: {folder}/ needs a README.md with a file table")
        continue
    inside = [f[len(folder) + 1:] for f in FILES if f.startswith(folder + "/")]
    must = [f for f in inside if LISTED.search(f) and f != "README.md" and "/fixtures/" not in "/" + f]
    covered = set()
    table_seen = False
    for i, ln in enumerate(read(readme).splitlines(), 1):
        if not ln.startswith("|"):
            continue
        cells = ln.strip().strip("|").split("|")
        first = cells[0]
        if re.fullmatch(r"\s*:?-+:?\s*", first) or first.strip().lower() in ("file", "files"):
            table_seen = True
            continue
        for entry in re.findall(r"`([^`]+)`", first):
            n_rows += 1
            table_seen = True
            pat = entry.rstrip("/") + ("/*" if entry.endswith("/") else "")
            hits = [f for f in inside if fnmatch.fnmatch(f, pat) or (entry.endswith("/") and f.startswith(entry))]
            if not hits:
                report(readme, i, f"the file table lists '{entry}', which is not a file of {folder}/")
            covered.update(hits)
    if not table_seen:
        report(readme, 1, f"no file table (rows | `name` | what |)")
        continue
    for f in must:
        if f not in covered:
            report(readme, 1, f"the file table misses {folder}/{f}")

for p in problems:
    print(p)
if problems:
    print(f"check_docs: {len(problems)} problem(s)", file=sys.stderr)
    sys.exit(1)
print(f"check_docs: ok ({n_cites} citations of docs/, {n_defines} defines: names, {n_rows} file-table entries)")
PY
