// model/tokenizer_unicode.h — the tokenizer's character classes at the `tokenizers` package's Unicode
// version (16.0) on a PCRE2 whose tables are older (10.42: Unicode 14.0). The code points assigned in
// 15.0-16.0 (CJK extensions H and I, Garay, the outlined digits U+1CCF0.., ...) come from a generated
// table (model/tokenizer_unicode_table.h, written by tests/tokenizer/make_unicode_table.py from
// unicodedata2 16.0.0) and are added to the property classes of the pre-tokenizer's regexes.
// defines: tok_unicode_regex, tok_unicode_is_punct, tok_unicode_lower_new
#ifndef CISPO_MODEL_TOKENIZER_UNICODE_H
#define CISPO_MODEL_TOKENIZER_UNICODE_H

#include <stdint.h>

// Rewrites a `tokenizers` (Oniguruma) regex for PCRE2 so both match the same characters (malloc'ed):
//  - \p{X} / \P{X} / \d / \D of a general category (L, Lu, N, Nd, P, ..., long names such as Letter)
//    take the code points new in 15.0-16.0 of that category: \p{L} becomes [\p{L}\x{..}-\x{..}...] (in a
//    class the ranges are added to it); \P{X} inside a class is left as it is (rare; not exact there);
//  - Oniguruma's \s is the Unicode White_Space property; PCRE2's UCP \s also takes U+180E, so \s and
//    \S become \p{White_Space} and \P{White_Space};
//  - Oniguruma's \p{Han} is the Script property; PCRE2 (10.40+) reads a bare script name as
//    Script_Extensions (U+3002 "。" would be Han), so script names become \p{sc:Han}. (Script
//    properties keep PCRE2's Unicode version.)
char *tok_unicode_regex(const char *pat);

// 1 when `tokenizers`' Punctuation pre-tokenizer splits on cp: ASCII punctuation, or general category P
// in the tables of the unicode_categories crate it uses (older than Unicode 14: U+2E43.. are not).
int tok_unicode_is_punct(uint32_t cp);

// The lowercase of a code point new in 15.0-16.0 (U+A7CB -> U+0264, Garay U+10D50 -> U+10D70, ...), as
// Rust's char::to_lowercase gives it; 0 for every other code point (utf8proc's mapping applies).
uint32_t tok_unicode_lower_new(uint32_t cp);

#endif
