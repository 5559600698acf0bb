// sandbox/base64.h — RFC 4648 base64 for the files carried in requests and responses.
// defines: sandbox_b64_encode, sandbox_b64_decode
#ifndef CISPO_SANDBOX_BASE64_H
#define CISPO_SANDBOX_BASE64_H

#include <stddef.h>

// NUL-terminated encoding of data; caller frees.
char *sandbox_b64_encode(const char *data, size_t len);
// Decodes text (whitespace ignored, padding optional); NULL on a bad character. Caller frees;
// *len gets the decoded size (a NUL follows the data).
char *sandbox_b64_decode(const char *text, size_t *len);

#endif
