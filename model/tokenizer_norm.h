// model/tokenizer_norm.h — the "normalizer" section of a Hugging Face tokenizer.json: Unicode
// normal forms (NFC, NFD, NFKC, NFKD through utf8proc), Lowercase, Strip, Replace (string or regex,
// PCRE2), Prepend, and Sequence of these. Applied to the text between added tokens, as `tokenizers`.
// defines: tok_normalizer_t, tok_normalizer_load, tok_normalizer_apply, tok_normalizer_free
#ifndef CISPO_MODEL_TOKENIZER_NORM_H
#define CISPO_MODEL_TOKENIZER_NORM_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct tok_normalizer tok_normalizer_t;

// *out = NULL for a null section or an empty Sequence. 0, or -1 naming path and the key.
int tok_normalizer_load(tok_normalizer_t **out, const cJSON *section, const char *path);
// The normalized text (malloc'ed, NUL-terminated, length in *out_len), or NULL when the input is not
// valid UTF-8.
char *tok_normalizer_apply(const tok_normalizer_t *nz, const char *s, size_t n, size_t *out_len);
void tok_normalizer_free(tok_normalizer_t *nz);

#endif
