// model/seq_logprob.c — per-token log-probs of one sequence, and token-id files.
// defines: model_read_token_file, model_parse_tokens, model_seq_logprobs
#include "model/seq_logprob.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/common.h"

int model_parse_tokens(const char *text, const char *origin, int vocab_size, int min_tokens, int32_t **ids,
                       int *n) {
    return model_parse_tokens_from(text, origin, 1, vocab_size, min_tokens, ids, n);
}

int model_parse_tokens_from(const char *text, const char *origin, int first_line, int vocab_size, int min_tokens,
                            int32_t **ids, int *n) {
    int cnt = 0, line = first_line;
    buf_t out;  // int32 ids, appended as bytes
    buf_init(&out);
    const char *p = text;
    for (;;) {
        while (*p && isspace((unsigned char)*p)) line += *p++ == '\n';
        if (!*p) break;
        const char *start = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        int len = (int)(p - start);
        char *endp = NULL;
        errno = 0;
        long long v = isdigit((unsigned char)*start) ? strtoll(start, &endp, 10) : 0;
        if (!isdigit((unsigned char)*start) || endp != p || errno != 0) {
            buf_free(&out);
            return cispo_fail("%s: line %d, token %d: '%.*s' is not a token id (expected a non-negative decimal "
                              "integer)", origin, line, cnt + 1, len > 40 ? 40 : len, start);
        }
        if (v >= vocab_size) {
            buf_free(&out);
            return cispo_fail("%s: line %d, token %d: id %lld is outside the vocabulary (vocab_size %d)", origin, line,
                              cnt + 1, v, vocab_size);
        }
        int32_t id = (int32_t)v;
        buf_append(&out, &id, sizeof id);
        cnt++;
    }
    if (cnt < min_tokens) {
        buf_free(&out);
        return cispo_fail("%s: %d token%s, at least %d needed", origin, cnt, cnt == 1 ? "" : "s", min_tokens);
    }
    *ids = (int32_t *)(void *)buf_take(&out, NULL);
    *n = cnt;
    return 0;
}

int model_read_token_file(const char *path, int vocab_size, int min_tokens, int32_t **ids, int *n) {
    char *text = cispo_read_file(path, NULL);
    if (!text) return -1;
    int rc = model_parse_tokens(text, path, vocab_size, min_tokens, ids, n);
    free(text);
    return rc;
}

int model_seq_logprobs(model_t *m, const int32_t *ids, int n, float *logp) {
    if (n < 2) return cispo_fail("model_seq_logprobs: %d tokens, at least 2 needed", n);
    int32_t cu[2] = {0, n};
    if (model_forward(m, ids, cu, 1, n) < 0) return -1;
    int32_t *targets = cispo_malloc((size_t)n * sizeof(int32_t));
    float *lp = cispo_malloc((size_t)n * sizeof(float));
    for (int i = 0; i + 1 < n; i++) targets[i] = ids[i + 1];
    targets[n - 1] = -1;
    model_logprobs(m, targets, lp, NULL);
    memcpy(logp, lp, (size_t)(n - 1) * sizeof(float));
    free(lp);
    free(targets);
    return 0;
}
