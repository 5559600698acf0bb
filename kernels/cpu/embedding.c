// kernels/cpu/embedding.c — token embedding lookup and its scatter-add backward.
// defines: embedding_forward_cpu, embedding_backward_cpu
#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"

#include <string.h>

// out[t, :] = table[ids[t], :]        out [T,C], table [V,C]
void embedding_forward_cpu(float *out, const int32_t *ids, const float *table, int T, int C) {
    for (int t = 0; t < T; t++) {
        CISPO_ASSERT(ids[t] >= 0);  // token ids are validated where they enter (tokenizer, datasets)
        memcpy(out + (size_t)t * C, table + (size_t)ids[t] * C, (size_t)C * sizeof(float));
    }
}

// dtable[ids[t], :] += dout[t, :]     in token order, so repeated ids sum the same way every run
void embedding_backward_cpu(float *dtable, const float *dout, const int32_t *ids, int T, int C) {
    for (int t = 0; t < T; t++) {
        CISPO_ASSERT(ids[t] >= 0);
        float *row = dtable + (size_t)ids[t] * C;
        const float *d = dout + (size_t)t * C;
        for (int c = 0; c < C; c++) row[c] += d[c];
    }
}
