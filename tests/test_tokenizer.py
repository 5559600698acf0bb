#!/usr/bin/env python3
"""tests/test_tokenizer.py — our C tokenizer (model/tokenizer.c, through `cispo tokenize`) against the
`tokenizers` package on tokenizers trained here: byte-level BPE with the GPT-2 regex (with and
without a prefix space), GPT-4/Llama-3-style and Qwen-style Split regexes, a pipeline of Split
behaviours and Digits, and an unk-token model, with added and special tokens. Both merge formats are
written. Then the committed files of tests/tokenizer/ (tests/tokenizer/make_tokenizers.py): the
SentencePiece-style ones (Metaspace with each prepend_scheme, byte fallback, the ByteFallback, Replace,
Fuse and Strip decoders), Punctuation (Falcon style), and EOS/BOS detection (only special/added tokens
or tokenizer_config.json name them). Held-out multilingual text (tests/data/tokenizer_corpus_heldout.txt),
characters assigned in Unicode 15 and 16 and seeded random strings must give IDENTICAL ids, identical
decodes, and exact round trips where the tokenizer is lossless. Bad tokenizer.json files must fail with
one line naming the file and the key; a text holding NUL characters is encoded whole.

Run: CISPO_BIN=build/cispo CISPO_PYTHON=build/venv/bin/python $CISPO_PYTHON tests/test_tokenizer.py
(ctest runs it as test_tokenizer via tests/cmake/tokenizer.cmake).
"""
import json
import os
import random
import subprocess
import sys
import tempfile

os.environ["RUST_BACKTRACE"] = "0"  # the reference's panics (see ref_decode) print one line, not a trace
try:
    from tokenizers import (AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors,
                            trainers)
except ImportError:
    sys.exit("test_tokenizer: the `tokenizers` package is missing: run through scripts/test.sh "
             "(its venv installs tests/requirements.txt) or pip install tokenizers")

SRC = os.environ.get("CISPO_SRC", os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BIN = os.environ.get("CISPO_BIN", os.path.join(SRC, "build", "cispo"))
DATA = os.path.join(SRC, "tests", "data")
COMMITTED = os.path.join(SRC, "tests", "tokenizer")
# Characters assigned in Unicode 15.0, 15.1 and 16.0 (letters and digits to `tokenizers`, whose regexes
# and char::is_numeric are at Unicode 16, "other" to a PCRE2 with Unicode 14 tables), and one of 17.0
# (unassigned to both).
UNICODE_NEW = ["\U00031350", "\U000323AF", "\U0002EBF0", "\U0002EE5D", "\U0001CCF3", "\U0001CCF0", "\U00010D50",
               "\U00010D70", "\U000105C0", "\U00011F04", "\U00011F50", "\u0897", "\u1B4E", "\u1C89", "\uA7CB",
               "\U00016D40", "\U0001E5D0", "\U0001E5F1", "\U000323B0"]

GPT4_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")

checks = 0
failures = 0


def check(ok, what):
    global checks, failures
    checks += 1
    if not ok:
        failures += 1
        print("FAIL", what)
    return ok


def read(name):
    with open(os.path.join(DATA, name), encoding="utf-8", newline="") as f:
        return f.read()


# ---------------------------------------------------------------- the tokenizers under test

def trained(pre, specials, vocab=900, model=None, alphabet=True, **trainer_kw):
    tok = Tokenizer(model or models.BPE())
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    kw = dict(vocab_size=vocab, special_tokens=specials, show_progress=False, **trainer_kw)
    if alphabet:
        kw["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    corpus = read("tokenizer_corpus.txt").splitlines(keepends=True)
    tok.train_from_iterator(corpus, trainers.BpeTrainer(**kw))
    return tok


def tok_gpt2():
    return trained(pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"]), {}


def tok_gpt2_prefix():
    tok = trained(pre_tokenizers.ByteLevel(add_prefix_space=True), ["<|endoftext|>", "<s>"])
    tok.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    tok.add_tokens([AddedToken("[tool]", rstrip=True, normalized=False),
                    AddedToken("cat", single_word=True),
                    AddedToken("数学", normalized=True),
                    AddedToken("<|endof", normalized=True)])
    bos, eos = tok.token_to_id("<s>"), tok.token_to_id("<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A <|endoftext|>",
                                                       special_tokens=[("<s>", bos), ("<|endoftext|>", eos)])
    return tok, {"legacy_merges": True, "lossless": False}  # the prefix space is added, not in the text


def tok_gpt4():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(GPT4_PATTERN), behavior="isolated"),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
    tok = trained(pre, specials, vocab=1200)
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      special_tokens=[("<|begin_of_text|>", tok.token_to_id("<|begin_of_text|>"))])])
    return tok, {"ignore_merges": True}


def tok_qwen():
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated", invert=False),
                                   pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = trained(pre, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], vocab=1000)
    return tok, {"legacy_merges": True}


def tok_behaviours():
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=False),
        pre_tokenizers.Split(Regex(r"[.,;:!?]"), behavior="merged_with_previous"),
        pre_tokenizers.Split(" ", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[A-Z]"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"\p{Han}+"), behavior="isolated", invert=True),
        pre_tokenizers.Split(Regex(r"\n"), behavior="removed"),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok = trained(pre, ["<|endoftext|>"], vocab=700)
    tok.decoder = None  # no decoder: tokens joined by spaces
    return tok, {"lossless": False}


def tok_unk():
    tok = trained(pre_tokenizers.ByteLevel(add_prefix_space=False), ["<unk>", "<|endoftext|>"], vocab=500,
                  model=models.BPE(unk_token="<unk>", fuse_unk=True), alphabet=False, limit_alphabet=70)
    return tok, {"lossless": False}


def tok_invert_removed():
    # Keep the non-space runs, drop the spaces (WhitespaceSplit written as an inverted Split).
    pre = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(r"\S+"), behavior="removed", invert=True),
                                   pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)])
    return trained(pre, ["<|endoftext|>"], vocab=600), {"lossless": False}


def tok_normalized():
    # Normalizers before the pre-tokenizer: NFKC, lowercase, strip, replace (string and regex), prepend;
    # a normalized added token matched in the normalized text, a raw one on the input.
    tok = trained(pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"], vocab=800)
    tok.normalizer = normalizers.Sequence([
        normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip(left=True, right=False),
        normalizers.Replace("``", '"'), normalizers.Replace(Regex(r"\s{2,}"), " "), normalizers.Prepend("~")])
    tok.add_tokens([AddedToken("ǅx", normalized=True), AddedToken("[RAW]", normalized=False)])
    return tok, {"lossless": False}


def tok_nfd():
    tok = trained(pre_tokenizers.ByteLevel(add_prefix_space=False), ["<|endoftext|>"], vocab=700)
    tok.normalizer = normalizers.NFD()
    return tok, {"lossless": False}


def tok_wrong_ids():
    tok, opts = tok_gpt2_prefix()
    return tok, dict(opts, wrong_added_ids=True, legacy_merges=False)


TOKENIZERS = [("gpt2", tok_gpt2), ("gpt2_prefix", tok_gpt2_prefix), ("wrong_added_ids", tok_wrong_ids), ("gpt4", tok_gpt4), ("qwen", tok_qwen),
              ("behaviours", tok_behaviours), ("unk", tok_unk), ("invert_removed", tok_invert_removed),
              ("normalized", tok_normalized), ("nfd", tok_nfd)]


def save(tok, opts, path):
    """Writes tokenizer.json, optionally with "a b" merges and ignore_merges; returns the reference
    Tokenizer loaded back from that exact file."""
    d = json.loads(tok.to_str())
    if opts.get("legacy_merges"):
        d["model"]["merges"] = [a + " " + b for a, b in d["model"]["merges"]]
    if opts.get("ignore_merges"):
        d["model"]["ignore_merges"] = True
    if opts.get("wrong_added_ids"):
        # Declared ids that disagree with the ones `tokenizers` assigns on reading (it warns and
        # assigns by order): ours must assign the same.
        for k, t in enumerate(d["added_tokens"]):
            t["id"] = 5000 + 7 * k
    with open(path, "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)
    return Tokenizer.from_file(path)


# ---------------------------------------------------------------- the texts

def random_texts(n, seed):
    rng = random.Random(seed)
    pools = [
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"), list("0123456789"),
        list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
        [" ", " ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u0085", "\u180e", "\u2028", "\u2009",
         "\u200b", "\x0b", "\x0c"],
        list("数学强化学习的模型推理今天答案"), list("العربيةمرحبا١٢٣"), list("РусскийязыкПривет"),
        ["😀", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "❤️", "1️⃣", "🤖"], ["e\u0301", "a\u0308", "\u0915\u093f"],
        ["'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'D", "'\u017f", "n't"],
        ["<|endoftext|>", "<|endof", "<|im_start|>", "<|im_end|>", "<s>", "</s>", "<mask>", " <mask>", "[tool]  ",
         "cat", " cat ", "cats", "数学", "<|eot_id|>", "<|begin_of_text|>", "<unk>"],
        ["\\frac{1}{2}", "\\boxed{", "$x^2$", "def ", "return ", "    ", "17+5*3-4", "3.14", "1,000", "２３"],
        [chr(c) for c in (0x1, 0x1f, 0x7f, 0xad, 0x2160, 0x00aa, 0x1e9e, 0x3007, 0xff21, 0x10348)],
        UNICODE_NEW, UNICODE_NEW, ["\u2581", "\u2581\u2581", " \u2581", "<0x41>", "[INST]", "[/INST]", "\u0000", "a\u0000b"],
        ["\u2e43", "\u2e5d", "\u061d", "\u166d", "\U000111c9", "\u00bf", "\u2014", "\u3001", "+", "$", "^", "`", "|"],
    ]
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 40)):
            pool = rng.choice(pools)
            parts.append(rng.choice(pool) * (rng.randint(1, 6) if rng.random() < 0.1 else 1))
        out.append("".join(parts))
    return out


def texts():
    held = read("tokenizer_corpus_heldout.txt")
    t = ["", " ", "\n", "  \n  ", "a", "'s", "<|endoftext|>", "<|endoftext|><|endoftext|>", " <|endoftext|> ",
         "<|endoftext|>hello<|im_start|>user\nhi<|im_end|>", "cat cat cats concat cat.", "a <mask> b  <mask>",
         "[tool]   x", "x  [tool]\n\n y",
         "_cat \u00b2cat \u0663cat \u200dcat cat_ ca\u0308t cat\u0308 \u00bdcat \u2160cat a\u0308cat", "数学数学 数学", "    \n\n\t  ", "!!!???...", "1234567890 12 1"]
    # Long runs: one piece of 20000 characters through the regexes and the merges.
    t += ["".join(UNICODE_NEW), " ".join(UNICODE_NEW), "x" + "y".join(UNICODE_NEW) + "9", "\U0001CCF3" * 7 + "12",
          "\U00031350\U00031351 \U0002EBF0abc", "\u2581x", " x", "  x", "<s>x", "<s> x", "[INST] x [/INST]",
          "[INST]x", " [INST] x", "x[INST]", "\u2581\u2581 a \u2581", "a\u0000b", "\u0000", "<0x41><0xE6>"]
    t += [" " * 20000 + "x", " \t" * 10000 + "\n\n" + "y", "a" * 20000, "7" * 20000, "!?" * 10000, "数学" * 10000]
    t += held.splitlines(keepends=True)
    t += [held, read("tokenizer_corpus.txt")]
    t += random_texts(400, seed=1234)
    return t


# ---------------------------------------------------------------- running our side

def run_cli(args, lines):
    p = subprocess.run([BIN, "tokenize"] + args, input="".join(l + "\n" for l in lines).encode("utf-8"),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if p.returncode != 0:
        raise RuntimeError("cispo tokenize %s failed: %s" % (" ".join(args), p.stderr.decode(errors="replace")))
    # split on "\n" only: decoded text may hold U+2028 or U+0085, which str.splitlines also splits on
    return [json.loads(l) for l in p.stdout.decode("utf-8").split("\n")[:-1]]


def encode_c(path, samples, add_special):
    lines = [json.dumps(s, ensure_ascii=False) for s in samples]
    return run_cli(["--tokenizer", path, "--jsonl"] + (["--add-special"] if add_special else []), lines)


def decode_c(path, id_lists, skip_special):
    lines = [json.dumps(ids) for ids in id_lists]
    return run_cli(["--tokenizer", path, "--jsonl", "--decode"] + (["--skip-special"] if skip_special else []), lines)


def compare_lists(name, what, got, want, samples):
    bad = [i for i in range(len(want)) if got[i] != want[i]]
    check(len(got) == len(want) and not bad, "%s: %s: %d of %d differ" % (name, what, len(bad), len(want)))
    for i in bad[:3]:
        print("   sample %r\n   ours %r\n   ref  %r" % (samples[i][:200], got[i][:60], want[i][:60]))


def test_tokenizer(name, make, tmp):
    tok, opts = make()
    path = os.path.join(tmp, name + ".json")
    ref = save(tok, opts, path)
    samples = texts()
    for add_special in (False, True):
        want = [ref.encode(s, add_special_tokens=add_special).ids for s in samples]
        got = encode_c(path, samples, add_special)
        compare_lists(name, "encode (add_special=%s)" % add_special, got, want, samples)
    ids = [ref.encode(s, add_special_tokens=False).ids for s in samples]
    for skip in (True, False):
        want = [ref.decode(i, skip_special_tokens=skip) for i in ids]
        got = decode_c(path, ids, skip)
        compare_lists(name, "decode (skip_special=%s)" % skip, got, want, samples)
        if not skip and opts.get("lossless", True):
            compare_lists(name, "round trip", got, samples, samples)
    # Random id sequences: partial UTF-8 characters decode to U+FFFD exactly as `tokenizers` does.
    rng = random.Random(7)
    v = ref.get_vocab_size()
    rand_ids = [[rng.randrange(v) for _ in range(rng.randint(0, 30))] for _ in range(200)]
    compare_lists(name, "decode of random ids", decode_c(path, rand_ids, False),
                  [ref.decode(i, skip_special_tokens=False) for i in rand_ids], [str(i) for i in rand_ids])
    n_tokens = sum(len(i) for i in ids)
    print("%-15s vocab %4d: %d texts, %d tokens identical" % (name, v, len(samples), n_tokens))


def ref_decode(ref, ids, skip):
    """The package's decode, or None where it panics: its Strip decoder indexes below 0 when `stop` reaches
    past what `start` cut (an empty text, a token of spaces). Ours decodes those; they are not compared."""
    try:
        return ref.decode(ids, skip_special_tokens=skip)
    except BaseException as e:  # pyo3's PanicException derives from BaseException
        if type(e).__name__ != "PanicException":
            raise
        return None


def test_committed(tmp):
    """The files of tests/tokenizer/ (make_tokenizers.py) loaded as they are, ids and decodes compared."""
    names = sorted(f[:-5] for f in os.listdir(COMMITTED) if f.endswith(".json"))
    check(len(names) >= 9, "tests/tokenizer holds the committed tokenizers: %s" % names)
    for name in names:
        path = os.path.join(COMMITTED, name + ".json")
        ref = Tokenizer.from_file(path)
        samples = texts()
        for add_special in (False, True):
            want = [ref.encode(s, add_special_tokens=add_special).ids for s in samples]
            compare_lists(name, "encode (add_special=%s)" % add_special, encode_c(path, samples, add_special), want,
                          samples)
        ids = [ref.encode(s, add_special_tokens=False).ids for s in samples]
        for skip in (True, False):
            want = [ref_decode(ref, i, skip) for i in ids]
            got = decode_c(path, ids, skip)
            got = [g if w is not None else None for g, w in zip(got, want)]
            compare_lists(name, "decode (skip_special=%s)" % skip, got, want, samples)
        rng = random.Random(11)
        v = ref.get_vocab_size()
        rand_ids = [[rng.randrange(v) for _ in range(rng.randint(0, 30))] for _ in range(300)]
        # runs of <0xNN> tokens: valid and broken UTF-8 through the ByteFallback decoder
        byte_ids = [i for i in (ref.token_to_id("<0x%02X>" % b) for b in range(256)) if i is not None]
        if byte_ids:
            rand_ids += [[rng.choice(byte_ids + [rng.randrange(v)]) for _ in range(rng.randint(1, 12))] for _ in range(300)]
            rand_ids.append(ref.encode("\U00031350 😀 é", add_special_tokens=False).ids)
        want = [ref_decode(ref, i, False) for i in rand_ids]
        got = [g if w is not None else None for g, w in zip(decode_c(path, rand_ids, False), want)]
        compare_lists(name, "decode of random ids", got, want, [str(i) for i in rand_ids])
        fallback = sum(1 for i in ids for x in i if x in set(byte_ids)) if byte_ids else 0
        print("%-18s vocab %4d: %d texts, %d tokens identical (%d byte-fallback tokens)"
              % (name, v, len(samples), sum(len(i) for i in ids), fallback))


def info(path):
    p = subprocess.run([BIN, "tokenize", "--tokenizer", path, "--info"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return dict(l.split(" ", 1) for l in p.stdout.decode().split("\n") if " " in l)


def test_special_ids(tmp):
    """EOS/BOS come from tokenizer_config.json or special/added tokens, never from plain vocabulary entries."""
    q = Tokenizer.from_file(os.path.join(COMMITTED, "qwen_nobos.json"))
    got = info(os.path.join(COMMITTED, "qwen_nobos.json"))
    check(q.token_to_id("<s>") is not None and got.get("bos") == "-1" and
          got.get("eos") == str(q.token_to_id("<|endoftext|>")),
          "Qwen-style file: plain <s> is no BOS, eos <|endoftext|>: %r" % got)
    r = Tokenizer.from_file(os.path.join(COMMITTED, "roberta.json"))
    got = info(os.path.join(COMMITTED, "roberta.json"))
    check(got.get("eos") == str(r.token_to_id("</s>")) and got.get("bos") == str(r.token_to_id("<s>")) and
          r.token_to_id("<|endoftext|>") is not None,
          "RoBERTa-style file: eos is the special </s>, not the plain <|endoftext|>: %r" % got)
    # tokenizer_config.json beside the file decides: a named token (even a plain entry), or null for none.
    d = os.path.join(tmp, "cfgdir")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(COMMITTED, "qwen_nobos.json"), encoding="utf-8") as f, \
            open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as g:
        g.write(f.read())
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": {"content": "<|im_end|>", "special": True}, "bos_token": "<s>", "pad_token": None}, f)
    got = info(os.path.join(d, "tokenizer.json"))
    check(got.get("eos") == str(q.token_to_id("<|im_end|>")) and got.get("bos") == str(q.token_to_id("<s>")) and
          got.get("pad") == "-1", "tokenizer_config.json names eos/bos: %r" % got)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"eos_token": None}, f)
    got = info(os.path.join(d, "tokenizer.json"))
    check(got.get("eos") == "-1", "tokenizer_config.json eos_token null: no EOS: %r" % got)


def test_nul(path):
    """--jsonl texts keep their NUL characters (JSON "\u0000")."""
    ref = Tokenizer.from_file(path)
    samples = ["a\u0000b", "\u0000", "x\u0000\u0000 y\u0000"]
    want = [ref.encode(s, add_special_tokens=False).ids for s in samples]
    got = encode_c(path, samples, False)
    check(got == want and len(want[0]) >= 2, "NUL inside a --jsonl text: %r vs %r" % (got, want))
    check(decode_c(path, want, False) == samples, "NUL round trip through --jsonl --decode")


# ---------------------------------------------------------------- bad files

def test_bad_files(tmp, good_path):
    with open(good_path, encoding="utf-8") as f:
        good = json.load(f)

    def variant(edit):
        d = json.loads(json.dumps(good))
        edit(d)
        return d

    def merges_first_unknown(d):
        d["model"]["merges"][0] = ["zzz-not-a-token", "a"]

    cases = [
        ("no_model", variant(lambda d: d.pop("model")), "'model'"),
        ("wordpiece", variant(lambda d: d["model"].update(type="WordPiece")), "'model.type'"),
        ("bad_merge_token", variant(merges_first_unknown), "'model.merges[0]'"),
        ("bad_merge_shape", variant(lambda d: d["model"]["merges"].__setitem__(1, 17)), "'model.merges[1]'"),
        ("no_vocab", variant(lambda d: d["model"].pop("vocab")), "'model.vocab'"),
        ("normalizer", variant(lambda d: d.update(normalizer={"type": "Precompiled", "precompiled_charsmap": ""})),
         "'normalizer.type'"),
        ("split_behavior", variant(lambda d: d.update(pre_tokenizer={"type": "Split", "pattern": {"Regex": "a"},
                                                                      "behavior": "Sideways", "invert": False})),
         "'pre_tokenizer.behavior'"),
        ("bad_regex", variant(lambda d: d.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": False}]})),
         "'pre_tokenizer.pretokenizers[0].pattern'"),
        ("unk_missing", variant(lambda d: d["model"].update(unk_token="<nope>")), "'model.unk_token'"),
        ("prepend_scheme", variant(lambda d: d.update(pre_tokenizer={"type": "Metaspace", "replacement": "\u2581",
                                                                      "prepend_scheme": "sometimes", "split": True})),
         "'pre_tokenizer.prepend_scheme'"),
        ("metaspace_replacement", variant(lambda d: d.update(pre_tokenizer={"type": "Metaspace", "replacement": "ab"})),
         "'pre_tokenizer.replacement'"),
        ("whitespace", variant(lambda d: d.update(pre_tokenizer={"type": "Sequence", "pretokenizers": [
            {"type": "WhitespaceSplit"}]})), "'pre_tokenizer.pretokenizers[0].type'"),
        ("decoder_wordpiece", variant(lambda d: d.update(decoder={"type": "Sequence", "decoders": [
            {"type": "ByteFallback"}, {"type": "WordPiece", "prefix": "##", "cleanup": True}]})),
         "'decoder.decoders[1].type'"),
        ("strip_no_stop", variant(lambda d: d.update(decoder={"type": "Strip", "content": " ", "start": 1})),
         "'decoder'"),
    ]
    for name, d, key in cases:
        path = os.path.join(tmp, "bad_" + name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False)
        p = subprocess.run([BIN, "tokenize", "--tokenizer", path], input=b"hello", stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        err = p.stderr.decode(errors="replace").strip()
        check(p.returncode == 1 and path in err and key in err and err.count("\n") == 0,
              "bad file %s: want exit 1 and one line naming %s and %s, got %d: %s" % (name, path, key, p.returncode, err))
    path = os.path.join(tmp, "bad_json.json")
    with open(path, "w") as f:
        f.write('{"model": {"type": "BPE", ')
    p = subprocess.run([BIN, "tokenize", "--tokenizer", path], input=b"x", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(p.returncode == 1 and b"not valid JSON" in p.stderr, "truncated JSON refused: %r" % p.stderr)
    # Invalid UTF-8 input is refused with its byte offset.
    p = subprocess.run([BIN, "tokenize", "--tokenizer", good_path], input=b"ab\xff", stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    check(p.returncode == 1 and b"byte 2" in p.stderr, "invalid UTF-8 refused at byte 2: %r" % p.stderr)


def test_demo_tokenizer():
    """The shipped demo tokenizer (configs/tokenizers/demo) encodes the demo prompts identically."""
    path = os.path.join(SRC, "configs", "tokenizers", "demo", "tokenizer.json")
    ref = Tokenizer.from_file(path)
    check(ref.get_vocab_size() == 512, "demo tokenizer vocab size %d == 512" % ref.get_vocab_size())
    p = subprocess.run([BIN, "gen-data", "--task", "arith", "--n", "200", "--seed", "5"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not check(p.returncode == 0, "gen-data ran: %r" % p.stderr[:300]):
        return
    recs = [json.loads(l) for l in p.stdout.decode("utf-8").split("\n")[:-1]]
    # The plain template (datasets/record.h): "<prompt>\n", then the response and EOS for SFT.
    samples = [r["prompt"] + "\n" for r in recs] + [r["prompt"] + "\n" + r["response"] + "<|endoftext|>" for r in recs]
    samples += read("tokenizer_corpus_heldout.txt").splitlines(keepends=True)
    want = [ref.encode(s, add_special_tokens=False).ids for s in samples]
    compare_lists("demo", "encode", encode_c(path, samples, False), want, samples)
    got = decode_c(path, want, False)
    compare_lists("demo", "round trip", got, samples, samples)
    per = sum(len(w) for w in want[:len(recs)]) / len(recs)
    per_sft = sum(len(w) for w in want[len(recs):2 * len(recs)]) / len(recs)
    got = info(path)
    check(got.get("eos") == "0" and got.get("vocab_size") == "512", "demo tokenizer: eos id 0, 512 tokens: %r" % got)
    print("demo tokenizer: %d texts identical; %.1f tokens per prompt, %.1f per SFT text" % (len(samples), per, per_sft))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in TOKENIZERS:
            test_tokenizer(name, make, tmp)
        test_bad_files(tmp, os.path.join(tmp, "gpt2.json"))
        test_nul(os.path.join(tmp, "gpt2.json"))
        test_committed(tmp)
        test_special_ids(tmp)
    test_demo_tokenizer()
    print("test_tokenizer: %d checks, %d failed: %s" % (checks, failures, "FAILED" if failures else "overall okay"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
