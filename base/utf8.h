// base/utf8.h — UTF-8 decoding, encoding, validation and lossy repair (strict, as Rust's str: overlong
// forms, surrogates and values above U+10FFFF are malformed). Unicode properties and normal forms
// come from utf8proc where needed; these are the byte-level rules alone.
// defines: utf8_decode, utf8_encode, utf8_is_cont, utf8_valid, utf8_append_lossy
#ifndef CISPO_BASE_UTF8_H
#define CISPO_BASE_UTF8_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

// Decodes one character at s[0, n): its length (1..4) and *cp, or 0 when malformed or n == 0.
int utf8_decode(const char *s, size_t n, uint32_t *cp);
// Writes cp (<= U+10FFFF, not a surrogate) to out[0..4); returns its length.
int utf8_encode(uint32_t cp, char out[4]);
// 1 when byte c continues a character (10xxxxxx): a cut before it would split the character.
static inline int utf8_is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }
// 1 when s[0, n) is valid UTF-8; else 0 and *bad_at (may be NULL) = the offset of the first bad byte.
int utf8_valid(const char *s, size_t n, size_t *bad_at);
// Appends s[0, n) with each maximal invalid prefix replaced by one U+FFFD (Rust's
// String::from_utf8_lossy, which Hugging Face `tokenizers`' ByteLevel decoder applies).
void utf8_append_lossy(buf_t *b, const char *s, size_t n);

#endif
