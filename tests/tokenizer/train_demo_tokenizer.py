#!/usr/bin/env python3
"""tests/tokenizer/train_demo_tokenizer.py — trains the demo tokenizer (configs/tokenizers/demo/):
a byte-level BPE of exactly 512 tokens (256 bytes + <|endoftext|> + 255 merges), the vocab_size of
configs/models/tiny.yaml.

Training text: SFT texts of the synthetic arithmetic task (prompt template + worked chain + EOS, from
`cispo gen-data --task arith`, so the merges fit what the tiny model sees) plus the English lines
of the general corpus (tests/data/tokenizer_corpus.txt). Digits are split one per token (Digits pre-tokenizer) so that
every number is spelled the same way, digit by digit, whatever its value: no number gets a merge of
its own, which would leave the model to learn two spellings of the same value.

Reproducible: the same cispo binary and corpus give a byte-identical tokenizer.json (the run below
trains twice and checks). Run from the repo root:
    build/venv/bin/python tests/tokenizer/train_demo_tokenizer.py --cispo build/cispo
"""
import argparse
import json
import os
import subprocess
import sys

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

VOCAB = 512
SPECIALS = ["<|endoftext|>"]


def training_texts(cispo, root, n):
    out = subprocess.run([cispo, "gen-data", "--task", "arith", "--n", str(n), "--seed", "2024", "--split", "train",
                          "--difficulty", "1-3"], check=True, stdout=subprocess.PIPE).stdout.decode("utf-8")
    texts = []
    for line in out.split("\n"):
        if line:
            r = json.loads(line)
            # The plain prompt template (datasets/record.h): "<prompt>\n" + response (+ EOS, which is a
            # special token: left out here, or BPE would spend merges spelling "<|endoftext|>").
            texts.append(r["prompt"] + "\n" + r["response"])
    with open(os.path.join(root, "tests", "data", "tokenizer_corpus.txt"), encoding="utf-8", newline="") as f:
        general = [l for l in f.read().splitlines(keepends=True) if l.isascii()]
    # The tiny model reads English and arithmetic: the ASCII lines of the general corpus, repeated so
    # that common English words get merges too (other scripts stay byte by byte).
    return texts + general * 10


def train(texts):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer)
    return tok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cispo", default="build/cispo", help="the cispo binary (for gen-data)")
    ap.add_argument("--out", default="configs/tokenizers/demo", help="output directory")
    ap.add_argument("--n", type=int, default=20000, help="synthetic records in the training text")
    a = ap.parse_args()
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    texts = training_texts(a.cispo, root, a.n)
    tok, again = train(texts), train(texts)
    if tok.to_str() != again.to_str():
        sys.exit("train_demo_tokenizer: two trainings on the same text differ: not reproducible")
    if tok.get_vocab_size() != VOCAB:
        sys.exit("train_demo_tokenizer: vocabulary of %d, want %d (more training text needed)" % (tok.get_vocab_size(), VOCAB))
    os.makedirs(a.out, exist_ok=True)
    tok.save(os.path.join(a.out, "tokenizer.json"))
    with open(os.path.join(a.out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "eos_token": SPECIALS[0], "bos_token": None,
                   "pad_token": SPECIALS[0], "model_max_length": 4096}, f, indent=2)
        f.write("\n")
    sample = texts[0]
    ids = tok.encode(sample).ids
    print("demo tokenizer: %d tokens, eos id %d; %r -> %d tokens" % (tok.get_vocab_size(), tok.token_to_id(SPECIALS[0]),
                                                                     sample, len(ids)))


if __name__ == "__main__":
    main()
