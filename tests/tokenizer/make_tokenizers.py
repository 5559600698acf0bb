#!/usr/bin/env python3
"""tests/tokenizer/make_tokenizers.py — writes the small tokenizer.json files of tests/tokenizer/ that
tests/test_tokenizer.py compares against the `tokenizers` package: one of each SentencePiece-style and
other pre-tokenizer/decoder kind the C tokenizer reads (model/tokenizer.h), trained here on
tests/data/tokenizer_corpus.txt with a small alphabet so that rarer characters take the byte fallback.

  llama2.json          Llama 2 / Phi-3 / ChatGLM style: normalizer Prepend("▁") + Replace(" ", "▁"), no
                       pre-tokenizer, BPE with byte_fallback and fuse_unk, decoder Replace + ByteFallback +
                       Fuse + Strip(" ", 1, 0), post-processor "<s> $A"
  mistral.json         Mistral / Mixtral / newer Llama 2 conversions: Metaspace(prepend_scheme="first",
                       split=False), added control tokens [INST] [/INST], the same decoder
  metaspace_always.json  Metaspace(always, split=True); decoder ByteFallback + Metaspace + Fuse
  metaspace_never.json   Punctuation(merged_with_previous) then Metaspace(never, split=True); decoder
                       ByteFallback + Metaspace(never) + Fuse
  strip_replace.json   normalizer Replace(" ", "▁"); decoder Replace(Regex "▁+" -> " ") + ByteFallback + Fuse +
                       Strip(" ", 2, 1)
  falcon.json          Falcon style: Punctuation + ByteLevel + Digits(individual) + Split of 3 digits; ByteLevel
                       decoder
  falcon_contiguous.json  Punctuation(contiguous) + ByteLevel; ByteLevel decoder
  qwen_nobos.json      byte-level with a plain vocabulary entry "<s>" and no BOS: tokenize --info says bos -1
  roberta.json         byte-level with a plain "<|endoftext|>" entry and special <s> </s> <pad>: eos is </s>

    python3 -m venv /tmp/t && /tmp/t/bin/pip install tokenizers==0.23.3
    /tmp/t/bin/python tests/tokenizer/make_tokenizers.py
"""
import json
import os

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "data", "tokenizer_corpus.txt")
BYTES = ["<0x%02X>" % b for b in range(256)]


def corpus():
    with open(CORPUS, encoding="utf-8") as f:
        return f.read().splitlines(keepends=True)


def train(tok, vocab, specials, byte_fallback, alphabet_limit=70, byte_level=False):
    kw = dict(vocab_size=vocab, special_tokens=specials + (BYTES if byte_fallback else []), show_progress=False)
    if byte_level:
        kw["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    else:
        kw["limit_alphabet"] = alphabet_limit
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(**kw))
    d = json.loads(tok.to_str())
    if byte_fallback:  # as SentencePiece conversions write them: <0xNN> are vocabulary entries, not added tokens
        d["added_tokens"] = [a for a in d["added_tokens"] if a["content"] not in BYTES]
        d["model"]["byte_fallback"] = True
    return d


def sp_decoder():
    return decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                              decoders.Strip(" ", 1, 0)])


def llama2():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
    tok.decoder = sp_decoder()
    d = train(tok, 700, ["<unk>", "<s>", "</s>"], True)
    t = Tokenizer.from_str(json.dumps(d))
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    return json.loads(t.to_str())


def mistral():
    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True, byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tok.decoder = sp_decoder()
    d = train(tok, 700, ["<unk>", "<s>", "</s>", "[INST]", "[/INST]"], True)
    t = Tokenizer.from_str(json.dumps(d))
    t.add_tokens([AddedToken("数学", normalized=False)])
    t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", t.token_to_id("<s>"))])
    return json.loads(t.to_str())


def metaspace_always():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(prepend_scheme="always"),
                                     decoders.Fuse()])
    return train(tok, 600, ["<unk>", "<s>", "</s>"], True)


def metaspace_never():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="merged_with_previous"),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never", split=True)])
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Metaspace(prepend_scheme="never"),
                                     decoders.Fuse()])
    return train(tok, 600, ["<unk>", "<s>", "</s>"], True)


def strip_replace():
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace(Regex("▁+"), " "), decoders.ByteFallback(), decoders.Fuse(),
                                     decoders.Strip(" ", 2, 1)])
    return train(tok, 600, ["<unk>", "<s>", "</s>"], True)


def falcon():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(), pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.Split(Regex("[0-9][0-9][0-9]"), behavior="isolated")])
    tok.decoder = decoders.ByteLevel()
    return train(tok, 700, [">>TITLE<<", ">>ABSTRACT<<", "<|endoftext|>"], False, byte_level=True)


def falcon_contiguous():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Punctuation(behavior="contiguous"), pre_tokenizers.ByteLevel(add_prefix_space=True)])
    tok.decoder = decoders.ByteLevel()
    return train(tok, 600, ["<|endoftext|>"], False, byte_level=True)


def qwen_nobos():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    d = train(tok, 400, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], False, byte_level=True)
    d["model"]["vocab"]["<s>"] = len(d["model"]["vocab"])  # a plain entry, as in byte-level vocabularies
    return d


def roberta():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    d = train(tok, 400, ["<s>", "<pad>", "</s>", "<unk>"], False, byte_level=True)
    d["model"]["vocab"]["<|endoftext|>"] = len(d["model"]["vocab"])  # GPT-2's token, plain in RoBERTa
    t = Tokenizer.from_str(json.dumps(d))
    t.add_special_tokens([AddedToken("<mask>", lstrip=True, special=True)])
    t.post_processor = processors.RobertaProcessing(("</s>", t.token_to_id("</s>")), ("<s>", t.token_to_id("<s>")))
    return json.loads(t.to_str())


FILES = {"llama2": llama2, "mistral": mistral, "metaspace_always": metaspace_always, "metaspace_never": metaspace_never,
         "strip_replace": strip_replace, "falcon": falcon, "falcon_contiguous": falcon_contiguous,
         "qwen_nobos": qwen_nobos, "roberta": roberta}

if __name__ == "__main__":
    for name, make in FILES.items():
        d = make()
        path = os.path.join(HERE, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
        t = Tokenizer.from_file(path)  # loads back
        print("%-18s vocab %4d  %7d bytes" % (name, t.get_vocab_size(), os.path.getsize(path)))
