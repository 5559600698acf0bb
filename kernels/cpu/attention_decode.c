// kernels/cpu/attention_decode.c — one query of causal GQA softmax attention against a paged KV cache
// (kernels/ops.h: attention_decode; attention_decode_cpu). Scores in fp32 with a max-subtracted
// softmax, as the prefill kernel; with a sliding window W only the last W visible positions count.
#include <math.h>
#include <stdlib.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"

void attention_decode_cpu(float *o, const float *q, const float *kpool, const float *vpool, const int32_t *blocks,
                          int n, int H, int KV, int D, int block_size, int window) {
    CISPO_ASSERT(window >= 0 && n >= 1 && block_size >= 1);
    const float scale = 1.0f / sqrtf((float)D);
    const int rep = H / KV;
    const size_t ld = (size_t)KV * D;
    cpu_scratch_t mark = cpu_scratch_begin();
    float *p = cpu_scratch_take(sizeof(float) * (size_t)n);
    const float **rowk = cpu_scratch_take(sizeof(float *) * (size_t)n);
    const float **rowv = cpu_scratch_take(sizeof(float *) * (size_t)n);
    const int j0 = window > 0 && n > window ? n - window : 0;  // first visible position
    for (int j = j0; j < n; j++) {
        const int32_t blk = blocks[j / block_size];
        CISPO_ASSERT(blk >= 0);
        const size_t row = (size_t)blk * block_size + j % block_size;
        rowk[j] = kpool + row * ld, rowv[j] = vpool + row * ld;
    }
    for (int h = 0; h < H; h++) {
        const float *qh = q + (size_t)h * D;
        const size_t kvo = (size_t)(h / rep) * D;
        float mx = -INFINITY;
        for (int j = j0; j < n; j++) {
            const float *kj = rowk[j] + kvo;
            float acc = 0;
            for (int d = 0; d < D; d++) acc += qh[d] * kj[d];
            p[j] = acc * scale;
            if (p[j] > mx) mx = p[j];
        }
        float sum = 0;
        for (int j = j0; j < n; j++) sum += (p[j] = expf(p[j] - mx));
        float *oh = o + (size_t)h * D;
        for (int d = 0; d < D; d++) oh[d] = 0;
        for (int j = j0; j < n; j++) {
            const float *vj = rowv[j] + kvo;
            const float w = p[j] / sum;
            for (int d = 0; d < D; d++) oh[d] += w * vj[d];
        }
    }
    cpu_scratch_end(mark);
}
