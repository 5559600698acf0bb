"""Exports are complete model directories. For every parity fixture: build a small SentencePiece-style
tokenizer of the fixture's vocabulary size (Metaspace, "<s> $A" template; tokenizer_config.json names
<s>/</s>/<unk>; chat_template.jinja beside it), convert the HF directory to an HDF5 checkpoint and back
with `cispo convert ... --tokenizer`, then check the exported directory.

Checked everywhere (CI: the test venv has `tokenizers`, not torch; ctest test_export_files runs --files):
  - tokenizer.json is the source's, byte for byte; `tokenizers` loads it and gives the ids of
    `cispo tokenize` on the export, and the same decodes;
  - tokenizer_config.json carries the chat template (from chat_template.jinja), the special tokens
    and a tokenizer class; config.json and generation_config.json carry the tokenizer's eos/bos ids.
Checked with torch and transformers (where the parity fixtures are produced; the default):
  - AutoTokenizer.from_pretrained loads the export and gives the same ids; apply_chat_template renders;
  - AutoModelForCausalLM.from_pretrained loads it (MiniMaxForCausalLM): per-token log-probs match the
    fixture's, the weights are bit-identical, and greedy generate() gives the same tokens as
    `cispo generate --greedy` on the export (both stop at the exported EOS).

    python3 tests/parity/check_export.py [--files] BUILD/cispo [FIXTURES_DIR]
Prints one line per fixture and a last line with the verdict; exits 1 on any failure.
"""
import json, os, subprocess, sys, tempfile

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

files_only = "--files" in sys.argv[1:]
args = [a for a in sys.argv[1:] if a != "--files"]
cispo = args[0]
root = args[1] if len(args) > 1 else os.path.join(os.path.dirname(__file__), "..", "fixtures", "parity")
if not files_only:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

TEMPLATE = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
            "{% else %}{{ m['content'] }}{{ eos_token }}{% endif %}{% endfor %}")
TEXTS = ["the cat sat on a mat", " leading space", "x, y. z!", "1234 and 56", "", "zebra quiz jump"]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL", what)
    return ok


def make_tokenizer(vocab_size, d):
    """A BPE tokenizer with exactly vocab_size ids: <unk> <s> </s>, single characters, then merges."""
    chars = list("\u2581etaoinshrdlucmfwypvbgkjqxz.,!?0123456789")[:max(1, vocab_size - 3 - 4)]
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    for c in chars:
        vocab[c] = len(vocab)
    merges = []
    for a in chars:
        for b in chars:
            if len(vocab) >= vocab_size:
                break
            if a + b not in vocab:
                merges.append((a, b))
                vocab[a + b] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True))
    tok.add_special_tokens(["<unk>", "<s>", "</s>"])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=False)
    tok.decoder = decoders.Sequence([decoders.Replace("\u2581", " "), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    assert tok.get_vocab_size() == vocab_size, (tok.get_vocab_size(), vocab_size)
    os.makedirs(d)
    tok.save(os.path.join(d, "tokenizer.json"))
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "model_max_length": 4096}, f)
    with open(os.path.join(d, "chat_template.jinja"), "w") as f:
        f.write(TEMPLATE)
    return os.path.join(d, "tokenizer.json")


def cispo_ids(tok_path, texts):
    lines = "".join(json.dumps(t) + "\n" for t in texts).encode()
    p = subprocess.run([cispo, "tokenize", "--tokenizer", tok_path, "--jsonl", "--add-special"], input=lines,
                       stdout=subprocess.PIPE, check=True)
    return [json.loads(l) for l in p.stdout.decode().splitlines()]


def check_files(name, src_tok, out, vocab):
    with open(src_tok, "rb") as a, open(os.path.join(out, "tokenizer.json"), "rb") as b:
        check(a.read() == b.read(), f"{name}: tokenizer.json copied byte for byte")
    tc = json.load(open(os.path.join(out, "tokenizer_config.json")))
    check(tc.get("chat_template") == TEMPLATE, f"{name}: tokenizer_config.json holds the chat template")
    check(tc.get("eos_token") == "</s>" and tc.get("bos_token") == "<s>" and tc.get("tokenizer_class"),
          f"{name}: tokenizer_config.json names the special tokens and a class: {tc}")
    cfg = json.load(open(os.path.join(out, "config.json")))
    gen = json.load(open(os.path.join(out, "generation_config.json")))
    for what, d in (("config.json", cfg), ("generation_config.json", gen)):
        check(d.get("eos_token_id") == 2 and d.get("bos_token_id") == 1,
              f"{name}: {what} eos/bos ids are the tokenizer's </s>/<s>: {d.get('eos_token_id')}/{d.get('bos_token_id')}")
    check(cfg.get("vocab_size") == vocab, f"{name}: config.json vocab_size")
    ref = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
    want = [ref.encode(t).ids for t in TEXTS]
    got = cispo_ids(os.path.join(out, "tokenizer.json"), TEXTS)
    check(got == want, f"{name}: exported tokenizer: cispo ids {got} == tokenizers ids {want}")
    p = subprocess.run([cispo, "tokenize", "--tokenizer", os.path.join(out, "tokenizer.json"), "--jsonl", "--decode",
                        "--skip-special"], input="".join(json.dumps(i) + "\n" for i in want).encode(),
                       stdout=subprocess.PIPE, check=True)
    back = [json.loads(l) for l in p.stdout.decode().split("\n")[:-1]]
    check(back == [ref.decode(i, skip_special_tokens=True) for i in want], f"{name}: exported tokenizer decodes {back}")
    return want


def check_transformers(name, src, out, want_ids, tmp):
    tok = AutoTokenizer.from_pretrained(out)
    got = [tok(t)["input_ids"] for t in TEXTS]
    check(got == want_ids, f"{name}: AutoTokenizer ids {got} == cispo ids {want_ids}")
    chat = tok.apply_chat_template([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
                                   tokenize=False)
    check(chat == "<s>[INST] hi [/INST]yo</s>", f"{name}: apply_chat_template on the export: {chat!r}")
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    model.config._attn_implementation = "eager"
    model.eval()
    ids = torch.tensor([[int(t) for t in open(os.path.join(src, "tokens.txt")).read().split()]])
    with torch.no_grad():
        logp_all = torch.log_softmax(model(input_ids=ids).logits.float()[0], dim=-1)
    logp = logp_all[:-1].gather(1, ids[0, 1:, None])[:, 0]
    ref = load_file(os.path.join(src, "expected.safetensors"))["logprobs"]
    d = (logp - ref).abs().max().item()
    a, b = load_file(os.path.join(src, "model.safetensors")), load_file(os.path.join(out, "model.safetensors"))
    same = all(torch.equal(a[k], b[k]) for k in b) and all(k in b for k in a if not k.endswith(("_decay", "slope_rate")))
    check(d <= 1e-5 and same, f"{name}: max |dlogp| {d:.3g} <= 1e-5, weights bit-identical {same}")
    # greedy decoding: transformers' generate() against cispo generate, both from the export
    prompt = [int(t) for t in open(os.path.join(src, "greedy.txt")).readline().split()]
    with torch.no_grad():
        hf = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                            max_new_tokens=12, do_sample=False)[0, len(prompt):].tolist()
    pf = os.path.join(tmp, "prompt.txt")
    with open(pf, "w") as f:
        f.write(" ".join(map(str, prompt)) + "\n")
    p = subprocess.run([cispo, "generate", "--model", out, "--prompt-tokens", pf, "--max-new", "12", "--greedy"],
                       stdout=subprocess.PIPE, check=True)
    ours = [int(t) for t in p.stdout.decode().split()]
    check(ours == hf, f"{name}: greedy tokens, cispo {ours} == transformers {hf}")
    return d


worst = 0.0
n = 0
for name in sorted(os.listdir(root)):
    src = os.path.join(root, name)
    if not os.path.exists(os.path.join(src, "config.json")):
        continue
    vocab = json.load(open(os.path.join(src, "config.json")))["vocab_size"]
    with tempfile.TemporaryDirectory() as tmp:
        h5, out = os.path.join(tmp, "m.h5"), os.path.join(tmp, "hf")
        src_tok = make_tokenizer(vocab, os.path.join(tmp, "tok"))
        subprocess.run([cispo, "convert", src, h5], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([cispo, "convert", h5, out, "--tokenizer", src_tok], check=True, stdout=subprocess.DEVNULL)
        want = check_files(name, src_tok, out, vocab)
        line = f"{name:20s} export files and tokenizer checked"
        if not files_only:
            d = check_transformers(name, src, out, want, tmp)
            worst = max(worst, d)
            line += f"; in transformers: max |dlogp| = {d:.3g}, tokenizer, chat template and greedy generate() agree"
        print(line)
        n += 1
check(n > 0, f"fixtures found in {root}")
print(f"export check ({'files only: no torch here' if files_only else 'files and transformers'}): {n} fixtures, "
      f"worst max |dlogp| = {worst:.3g}: {'FAILED' if failures else 'overall okay'}")
sys.exit(1 if failures else 0)
