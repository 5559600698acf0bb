// kernels/cpu/attention_decode.c — one decode step of causal GQA softmax attention against KV
// caches (kernels/ops.h: attention_decode_cpu). Scores in fp32 with a max-subtracted
// softmax, as the prefill kernel; with a sliding window W only the last W cached positions count.
#include <math.h>
#include <stdlib.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"

void attention_decode_cpu(float *o, const float *q, const float *kcache, const float *vcache, const int32_t *len,
                          int nseq, int H, int KV, int D, int max_ctx, int window) {
    CISPO_ASSERT(window >= 0);
    const float scale = 1.0f / sqrtf((float)D);
    const int rep = H / KV;
    cpu_scratch_t mark = cpu_scratch_begin();
    float *p = cpu_scratch_take(sizeof(float) * (size_t)(max_ctx > 0 ? max_ctx : 1));
    for (int s = 0; s < nseq; s++) {
        const int n = len[s];
        CISPO_ASSERT(n >= 1 && n <= max_ctx);
        const int j0 = window > 0 && n > window ? n - window : 0;  // first visible position
        for (int h = 0; h < H; h++) {
            const float *qh = q + ((size_t)s * H + h) * D;
            const int kvh = h / rep;
            float mx = -INFINITY;
            for (int j = j0; j < n; j++) {
                const float *kj = kcache + (((size_t)s * max_ctx + j) * KV + kvh) * D;
                float acc = 0;
                for (int d = 0; d < D; d++) acc += qh[d] * kj[d];
                p[j] = acc * scale;
                if (p[j] > mx) mx = p[j];
            }
            float sum = 0;
            for (int j = j0; j < n; j++) sum += (p[j] = expf(p[j] - mx));
            float *oh = o + ((size_t)s * H + h) * D;
            for (int d = 0; d < D; d++) oh[d] = 0;
            for (int j = j0; j < n; j++) {
                const float *vj = vcache + (((size_t)s * max_ctx + j) * KV + kvh) * D;
                const float w = p[j] / sum;
                for (int d = 0; d < D; d++) oh[d] += w * vj[d];
            }
        }
    }
    cpu_scratch_end(mark);
}
