// trainer/train_batch.c — micro-batch packing, forward and backward over (prompt, response) pairs.
#include "trainer/train_batch.h"

#include <stdlib.h>
#include <string.h>

#include "base/common.h"

static int seq_tokens(const train_seq_t *s) { return s->n_prompt + s->n_resp - 1; }

int train_seq_n_train(const train_seq_t *q) {
    if (!q->mask) return q->n_resp;
    int n = 0;
    for (int j = 0; j < q->n_resp; j++) n += q->mask[j] != 0;
    return n;
}

int micro_plan(const train_seq_t *seqs, int n, int max_tokens, micro_t **out) {
    micro_t *mb = cispo_malloc(sizeof(micro_t) * (size_t)(n > 0 ? n : 1));
    int k = 0;
    for (int i = 0; i < n;) {
        micro_t b = {i, 0, 0, 0};
        while (i < n && b.T + seq_tokens(&seqs[i]) <= max_tokens) {
            b.T += seq_tokens(&seqs[i]);
            b.n_resp += train_seq_n_train(&seqs[i]);
            b.count++, i++;
        }
        if (b.count == 0) {
            free(mb);
            return cispo_fail("a sequence of %d tokens does not fit micro_tokens = %d: raise micro_tokens",
                              seq_tokens(&seqs[i]), max_tokens);
        }
        mb[k++] = b;
    }
    *out = mb;
    return k;
}

int micro_forward(model_t *m, const train_seq_t *seqs, const micro_t *mb, float *logp, float *entropy) {
    int32_t *ids = cispo_malloc(sizeof(int32_t) * (size_t)mb->T);
    int32_t *tgt = cispo_malloc(sizeof(int32_t) * (size_t)mb->T);
    int32_t *cu = cispo_malloc(sizeof(int32_t) * (size_t)(mb->count + 1));
    float *lp = cispo_malloc(sizeof(float) * (size_t)mb->T);
    float *ent = entropy ? cispo_malloc(sizeof(float) * (size_t)mb->T) : NULL;
    int t = 0;
    cu[0] = 0;
    for (int s = 0; s < mb->count; s++) {
        const train_seq_t *q = &seqs[mb->first + s];
        memcpy(ids + t, q->prompt, sizeof(int32_t) * (size_t)q->n_prompt);
        memcpy(ids + t + q->n_prompt, q->resp, sizeof(int32_t) * (size_t)(q->n_resp - 1));
        for (int j = 0; j < q->n_prompt - 1; j++) tgt[t + j] = -1;
        memcpy(tgt + t + q->n_prompt - 1, q->resp, sizeof(int32_t) * (size_t)q->n_resp);
        t += seq_tokens(q);
        cu[s + 1] = t;
    }
    // routing replay: the experts the rollout chose for these very tokens (train_seq_t.routes)
    int32_t *replay = NULL;
    int replay_ok = mb->count > 0;
    for (int s = 0; s < mb->count; s++) {
        const train_seq_t *q = &seqs[mb->first + s];
        replay_ok &= q->routes != NULL && q->routes_n >= seq_tokens(q);
    }
    if (replay_ok) {
        const int L = m->cfg.n_layers, K = m->cfg.n_experts_per_tok;
        replay = cispo_malloc(sizeof(int32_t) * (size_t)L * (size_t)mb->T * (size_t)K);
        for (int l = 0; l < L; l++)
            for (int s = 0; s < mb->count; s++) {
                const train_seq_t *q = &seqs[mb->first + s];
                memcpy(replay + ((size_t)l * mb->T + cu[s]) * K, q->routes + (size_t)l * q->routes_stride * K,
                       sizeof(int32_t) * (size_t)seq_tokens(q) * K);
            }
    }
    m->route_replay = replay;
    int rc = model_forward(m, ids, cu, mb->count, mb->T);
    m->route_replay = NULL;
    free(replay);
    if (!rc) {
        model_logprobs(m, tgt, lp, ent);
        int r = 0;
        for (int s = 0; s < mb->count; s++) {
            const train_seq_t *q = &seqs[mb->first + s];
            int at = cu[s] + q->n_prompt - 1;
            if (q->mask) {  // the scored tokens only
                for (int j = 0; j < q->n_resp; j++)
                    if (q->mask[j]) {
                        logp[r] = lp[at + j];
                        if (entropy) entropy[r] = ent[at + j];
                        r++;
                    }
                continue;
            }
            memcpy(logp + r, lp + at, sizeof(float) * (size_t)q->n_resp);
            if (entropy) memcpy(entropy + r, ent + at, sizeof(float) * (size_t)q->n_resp);
            r += q->n_resp;
        }
    }
    free(ids), free(tgt), free(cu), free(lp), free(ent);
    return rc;
}

void micro_backward(model_t *m, const train_seq_t *seqs, const micro_t *mb, const float *dlogp, float aux_coef) {
    float *d = cispo_calloc((size_t)mb->T, sizeof(float));
    int t = 0, r = 0;
    for (int s = 0; s < mb->count; s++) {
        const train_seq_t *q = &seqs[mb->first + s];
        if (q->mask) {  // context tokens keep a zero gradient
            for (int j = 0; j < q->n_resp; j++)
                if (q->mask[j]) d[t + q->n_prompt - 1 + j] = dlogp[r++];
        } else {
            memcpy(d + t + q->n_prompt - 1, dlogp + r, sizeof(float) * (size_t)q->n_resp);
            r += q->n_resp;
        }
        t += seq_tokens(q);
    }
    model_backward(m, d, aux_coef);
    free(d);
}
