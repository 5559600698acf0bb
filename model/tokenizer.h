// model/tokenizer.h — BPE tokenizers (byte-level and SentencePiece-style) loaded from a Hugging Face
// tokenizer.json, giving the same ids as the `tokenizers` package 0.23 (tests/test_tokenizer.py checks
// this on trained tokenizers and on the committed files of tests/tokenizer/).
// defines: tokenizer_t, token_ids_t, tokenizer_load, tokenizer_free, tokenizer_encode,
//          tokenizer_decode, tokenizer_token_to_id, tokenizer_id_to_token, tokenizer_vocab_size,
//          tokenizer_special_id, tokenizer_eos_id, tokenizer_bos_id, tokenizer_pad_id, tokenizer_path,
//          token_ids_push, token_ids_free
//
// Supported tokenizer.json parts (anything else is refused at load with the file and the key):
//   model          BPE: vocab, merges as "a b" strings or ["a", "b"] pairs, unk_token, fuse_unk,
//                  byte_fallback (a character outside the vocabulary becomes its <0xNN> byte tokens),
//                  ignore_merges, continuing_subword_prefix, end_of_word_suffix
//                  (dropout is ignored: encoding is deterministic)
//   added_tokens   matched before pre-tokenization (leftmost-longest; lstrip, rstrip, single_word;
//                  normalized=false tokens first, as the `tokenizers` package does). Their ids are
//                  assigned as `tokenizers` assigns them on load (a warning on stderr when the file's
//                  declared ids disagree, which consistent files never do).
//   normalizer     model/tokenizer_norm.h (NFC/NFD/NFKC/NFKD, Lowercase, Strip, Replace, Prepend, Sequence)
//   pre_tokenizer  ByteLevel (add_prefix_space, use_regex), Split (Regex or String pattern; behavior
//                  Isolated, Removed, MergedWithPrevious, MergedWithNext, Contiguous; invert),
//                  Digits, Metaspace (replacement, prepend_scheme always/first/never, split),
//                  Punctuation (behavior), Sequence of these. Regexes run through PCRE2 with UTF and
//                  UCP, their character classes widened to Unicode 16.0 (model/tokenizer_unicode.h).
//   post_processor null, ByteLevel, TemplateProcessing (single), RobertaProcessing, BertProcessing,
//                  Sequence of these: applied when encoding with TOKENIZER_ADD_SPECIAL.
//   decoder        null (tokens joined by spaces), ByteLevel, ByteFallback, Metaspace, Replace, Fuse,
//                  Strip, Sequence of these.
// truncation and padding are ignored (callers cut sequences themselves). Not supported: WordPiece,
// WordLevel and Unigram models; the Whitespace, WhitespaceSplit, BertPreTokenizer, UnicodeScripts
// and CharDelimiterSplit pre-tokenizers; the Precompiled normalizer (SentencePiece's charsmap).
#ifndef CISPO_MODEL_TOKENIZER_H
#define CISPO_MODEL_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tokenizer tokenizer_t;

// A growable list of token ids; encoding appends to it. Zero-initialise, free with token_ids_free.
typedef struct {
    int32_t *ids;  // [n]
    size_t n, cap;
} token_ids_t;

void token_ids_push(token_ids_t *t, int32_t id);
void token_ids_free(token_ids_t *t);

enum {
    TOKENIZER_ADD_SPECIAL = 1,   // encode: apply the post-processor (e.g. a leading BOS), like
                                 //   `tokenizers`' add_special_tokens=True
    TOKENIZER_SKIP_SPECIAL = 2,  // decode: drop special added tokens, like skip_special_tokens=True
    TOKENIZER_LOSSY = 4,         // decode: replace invalid UTF-8 by U+FFFD (as `tokenizers` does);
                                 //   without it the raw bytes come back (streaming a partial character)
};

// Loads a tokenizer.json. NULL with cispo_last_error() naming the file and the key on failure.
tokenizer_t *tokenizer_load(const char *path);
void tokenizer_free(tokenizer_t *tok);

// Appends the ids of text[0, len) to *out. text must be valid UTF-8. Returns 0, or -1 with
// cispo_last_error() set (invalid UTF-8: the byte offset; a regex failure).
int tokenizer_encode(const tokenizer_t *tok, const char *text, size_t len, token_ids_t *out, int flags);

// Decodes ids to text: a new NUL-terminated buffer (caller frees); *len_out (may be NULL) gets its
// length without the NUL. Ids outside the vocabulary are skipped (as `tokenizers` does).
char *tokenizer_decode(const tokenizer_t *tok, const int32_t *ids, size_t n, int flags, size_t *len_out);

// The id of a token string (added tokens first, then the model vocabulary), or -1.
int32_t tokenizer_token_to_id(const tokenizer_t *tok, const char *token);
// The token string of an id (as written in tokenizer.json, e.g. "Ġthe"), or NULL.
const char *tokenizer_id_to_token(const tokenizer_t *tok, int32_t id);
// One more than the largest id (model vocabulary and added tokens).
int32_t tokenizer_vocab_size(const tokenizer_t *tok);
// 1 when id is an added token marked special.
int tokenizer_is_special(const tokenizer_t *tok, int32_t id);
// The id of a special added token by name (e.g. "<|endoftext|>"), or -1 when no special token has it.
int32_t tokenizer_special_id(const tokenizer_t *tok, const char *name);
// End-of-sequence id: tokenizer_config.json's "eos_token" beside the tokenizer.json when it has the key
// (null: none), else the first added token among the common names (<|endoftext|>, <|im_end|>,
// <|end_of_text|>, <|eot_id|>, </s>, <eos>, <|end|>); -1 when none is found. Ordinary vocabulary
// entries never count (a Qwen-style file's plain "<s>" is no BOS).
int32_t tokenizer_eos_id(const tokenizer_t *tok);
// Beginning-of-sequence id, found the same way ("bos_token"; <|begin_of_text|>, <s>, <bos>,
// <|startoftext|>); -1 when none is found.
int32_t tokenizer_bos_id(const tokenizer_t *tok);
// Padding id, found the same way ("pad_token"; <pad>, <|pad|>, [PAD], <|finetune_right_pad_id|>).
int32_t tokenizer_pad_id(const tokenizer_t *tok);
// The tokenizer.json it was loaded from.
const char *tokenizer_path(const tokenizer_t *tok);

#endif
