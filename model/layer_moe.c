// model/layer_moe.c — the sparse MoE block, forward and backward.
// defines: model_moe_forward, model_moe_backward, model_moe_scratch_floats
//
// transformers' MiniMaxSparseMoeBlock: logits = h2 Wg^T; p = softmax(logits) in fp32; top-K of p
// (torch.topk order), renormalised to sum 1; y = sum_k w_k * W2_e(act(W1_e x) * W3_e x), act =
// ACT2FN[hidden_act] (silu: SwiGLU).
// Tokens are dispatched into expert order (slots s = t*K + k) so each expert runs as one GEMM over
// its rows offsets[e]..offsets[e+1).
#include <string.h>

#include "base/common.h"
#include "kernels/ops.h"
#include "model/layers.h"

size_t model_moe_scratch_floats(const model_config_t *c, size_t T) {
    size_t S = T * (size_t)c->n_experts_per_tok, Cc = (size_t)c->hidden_size, F = (size_t)c->intermediate_size;
    // backward: dye, dxe [S,C]; dact [S,F]; dh13 [S,2F]; d1, d3 [S,F]; dtopk_w [T,K]; dlogits [T,E]
    return S * (2 * Cc + 5 * F) + S + T * (size_t)c->n_experts;
}

float model_moe_forward(model_t *m, int l, float *out, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    const size_t S = (size_t)T * K;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *X = m->acts;
    int32_t *I = m->iacts;
    const int32_t *off = I + a->offsets;
    size_t mark = s->used;

    matmul_cpu(X + a->logits, X + a->h2, P + p->router, T, E, C, 0, 1, 1.0f, 0.0f);
    moe_route_forward_cpu(X + a->probs, I + a->topk_idx, X + a->topk_w, X + a->logits, T, E, K);
    float aux = moe_aux_loss_cpu(X + a->probs, I + a->topk_idx, T, E, K);
    moe_dispatch_cpu(X + a->xe, I + a->perm, I + a->offsets, X + a->h2, I + a->topk_idx, T, C, E, K);

    // h13 rows = [x W1_e^T | x W3_e^T]: W1 and W3 are separate stacks, so each GEMM goes to a
    // temporary and is interleaved into the fused layout swiglu reads
    float *t1 = model_scratch_take(s, S * F), *t3 = model_scratch_take(s, S * F);
    for (int e = 0; e < E; e++) {
        int r0 = off[e], n = off[e + 1] - off[e];
        if (n == 0) continue;
        const float *xe = X + a->xe + (size_t)r0 * C;
        matmul_cpu(t1, xe, P + p->w1 + (size_t)e * F * C, n, F, C, 0, 1, 1.0f, 0.0f);
        matmul_cpu(t3, xe, P + p->w3 + (size_t)e * F * C, n, F, C, 0, 1, 1.0f, 0.0f);
        for (int i = 0; i < n; i++) {
            float *row = X + a->h13 + (size_t)(r0 + i) * 2 * F;
            memcpy(row, t1 + (size_t)i * F, (size_t)F * sizeof(float));
            memcpy(row + F, t3 + (size_t)i * F, (size_t)F * sizeof(float));
        }
    }
    glu_forward_cpu(c->hidden_act, X + a->act, X + a->h13, (int)S, F);
    for (int e = 0; e < E; e++) {
        int r0 = off[e], n = off[e + 1] - off[e];
        if (n == 0) continue;
        matmul_cpu(X + a->ye + (size_t)r0 * C, X + a->act + (size_t)r0 * F, P + p->w2 + (size_t)e * C * F, n, C, F, 0,
                   1, 1.0f, 0.0f);
    }
    memset(out, 0, (size_t)T * C * sizeof(float));
    moe_combine_forward_cpu(out, X + a->ye, X + a->topk_w, I + a->perm, T, C, K);
    s->used = mark;
    return aux;
}

void model_moe_backward(model_t *m, int l, const float *dout, float *din, float aux_coef, model_scratch_t *s) {
    const model_config_t *c = &m->cfg;
    const int T = m->T, C = c->hidden_size, E = c->n_experts, K = c->n_experts_per_tok, F = c->intermediate_size;
    const size_t S = (size_t)T * K;
    const model_layer_acts_t *a = &m->layer[l];
    const layer_params_t *p = &m->table.layers[l];
    const float *P = m->params;
    float *G = m->grads;
    const float *X = m->acts;
    const int32_t *I = m->iacts;
    const int32_t *off = I + a->offsets;
    size_t mark = s->used;

    // y = combine(ye, topk_w)
    float *dye = model_scratch_take_zero(s, S * C), *dtopk_w = model_scratch_take_zero(s, S);
    moe_combine_backward_cpu(dye, dtopk_w, dout, X + a->ye, X + a->topk_w, I + a->perm, T, C, K);
    // ye = act W2_e^T
    float *dact = model_scratch_take(s, S * F);
    for (int e = 0; e < E; e++) {
        int r0 = off[e], n = off[e + 1] - off[e];
        if (n == 0) continue;
        const float *w2 = P + p->w2 + (size_t)e * C * F;
        matmul_cpu(dact + (size_t)r0 * F, dye + (size_t)r0 * C, w2, n, F, C, 0, 0, 1.0f, 0.0f);
        matmul_cpu(G + p->w2 + (size_t)e * C * F, dye + (size_t)r0 * C, X + a->act + (size_t)r0 * F, C, F, n, 1, 0,
                   1.0f, 1.0f);
    }
    // act = act(h1) * h3
    float *dh13 = model_scratch_take_zero(s, S * 2 * F);
    glu_backward_cpu(c->hidden_act, dh13, dact, X + a->h13, (int)S, F);
    // h1 = xe W1_e^T, h3 = xe W3_e^T (every dispatched row belongs to exactly one expert)
    float *dxe = model_scratch_take(s, S * C);
    float *d1 = model_scratch_take(s, S * F), *d3 = model_scratch_take(s, S * F);
    for (int e = 0; e < E; e++) {
        int r0 = off[e], n = off[e + 1] - off[e];
        if (n == 0) continue;
        for (int i = 0; i < n; i++) {
            const float *row = dh13 + (size_t)(r0 + i) * 2 * F;
            memcpy(d1 + (size_t)i * F, row, (size_t)F * sizeof(float));
            memcpy(d3 + (size_t)i * F, row + F, (size_t)F * sizeof(float));
        }
        const float *xe = X + a->xe + (size_t)r0 * C;
        float *dx = dxe + (size_t)r0 * C;
        matmul_cpu(dx, d1, P + p->w1 + (size_t)e * F * C, n, C, F, 0, 0, 1.0f, 0.0f);
        matmul_cpu(dx, d3, P + p->w3 + (size_t)e * F * C, n, C, F, 0, 0, 1.0f, 1.0f);
        matmul_cpu(G + p->w1 + (size_t)e * F * C, d1, xe, F, C, n, 1, 0, 1.0f, 1.0f);
        matmul_cpu(G + p->w3 + (size_t)e * F * C, d3, xe, F, C, n, 1, 0, 1.0f, 1.0f);
    }
    moe_dispatch_backward_cpu(din, dxe, I + a->perm, T, C, K);
    // routing: topk_w and (through the aux loss) probs depend on logits = h2 Wg^T
    float *dlogits = model_scratch_take_zero(s, (size_t)T * E);
    moe_route_backward_cpu(dlogits, dtopk_w, aux_coef, X + a->probs, I + a->topk_idx, X + a->topk_w, T, E, K);
    matmul_cpu(din, dlogits, P + p->router, T, C, E, 0, 0, 1.0f, 1.0f);
    matmul_cpu(G + p->router, dlogits, X + a->h2, E, C, T, 1, 0, 1.0f, 1.0f);
    s->used = mark;
}
