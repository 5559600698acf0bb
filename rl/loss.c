// rl/loss.c — advantages and the policy-gradient losses of docs/rl.md (CISPO, PPO-clip/GRPO, DAPO, GSPO).
// Each loss returns dLoss/dlogp per token; see rl/loss.h for the contract.
#include "rl/loss.h"

#include <math.h>
#include <string.h>

void advantages_group(float *adv, const float *rewards, int n_groups, int G, const adv_config_t *cfg) {
    for (int g = 0; g < n_groups; g++) {
        const float *r = rewards + (size_t)g * G;
        float *a = adv + (size_t)g * G;
        double sum = 0;
        for (int i = 0; i < G; i++) sum += r[i];
        double mean = sum / G;
        if (G < 2) {
            for (int i = 0; i < G; i++) a[i] = 0.0f;
            continue;
        }
        if (cfg->kind == ADV_RLOO) {  // baseline: mean of the other G-1 samples
            for (int i = 0; i < G; i++) a[i] = (float)(r[i] - (sum - r[i]) / (G - 1));
            continue;
        }
        double var = 0;
        for (int i = 0; i < G; i++) var += (r[i] - mean) * (r[i] - mean);
        double std = sqrt(var / (G - 1));  // sample std, as torch.std
        double den = cfg->kind == ADV_GROUP_NO_STD ? 1.0 : std + cfg->eps;
        for (int i = 0; i < G; i++) a[i] = (float)((r[i] - mean) / den);
    }
}

int group_has_signal(const float *rewards, int G) {
    for (int i = 1; i < G; i++)
        if (rewards[i] != rewards[0]) return 1;
    return 0;
}

float reward_overlong_penalty(int length, int max_len, int cache_len) {
    int soft = max_len - cache_len;
    if (length <= soft) return 0.0f;
    if (length <= max_len && cache_len > 0) return (float)(soft - length) / (float)cache_len;
    return -1.0f;
}

void loss_config_defaults(loss_config_t *cfg, int kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    switch (kind) {
    case LOSS_CISPO: cfg->eps_low = 1.0; cfg->eps_high = 4.0; break;  // docs/rl.md: no effective lower bound
    case LOSS_GRPO: cfg->eps_low = 0.2; cfg->eps_high = 0.2; break;
    case LOSS_DAPO: cfg->eps_low = 0.2; cfg->eps_high = 0.28; break;  // clip-higher
    case LOSS_GSPO: cfg->eps_low = 3e-4; cfg->eps_high = 4e-4; break;
    }
}

static const char *const kind_names[] = {"cispo", "grpo", "dapo", "gspo"};

int loss_kind_parse(const char *name) {
    if (!strcmp(name, "ppo")) return LOSS_GRPO;
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, kind_names[i])) return i;
    return -1;
}

const char *loss_kind_name(int kind) { return kind >= 0 && kind < 4 ? kind_names[kind] : "?"; }

// Importance-ratio bookkeeping shared by every kind.
static void note_ratio(loss_stats_t *st, const loss_config_t *cfg, double r) {
    st->weight_sum += r;
    if (r > st->weight_max) st->weight_max = r;
    if (r < 1.0 - cfg->eps_low) st->clip_low += 1;
    if (r > 1.0 + cfg->eps_high) st->clip_high += 1;
    st->kl_old_sum += (r - 1.0) - log(r);  // k3 estimate of KL(old || new) under samples from old
}

double policy_loss(const loss_config_t *cfg, const float *logp, const float *logp_old, const float *logp_ref,
                   const float *adv, const int32_t *seq_offsets, int n_seq, double norm, float *dlogp,
                   loss_stats_t *st) {
    double loss = 0;
    const double lo = 1.0 - cfg->eps_low, hi = 1.0 + cfg->eps_high;
    for (int s = 0; s < n_seq; s++) {
        int b = seq_offsets[s], e = seq_offsets[s + 1];
        if (e <= b) continue;
        double seq_ratio = 0, seq_grad = 0;
        if (cfg->kind == LOSS_GSPO) {  // sequence-level ratio: exp(mean log ratio)
            double m = 0;
            for (int t = b; t < e; t++) m += (double)logp[t] - (double)logp_old[t];
            seq_ratio = exp(m / (e - b));
            double A = adv[b], clipped = fmin(fmax(seq_ratio, lo), hi);
            double obj = fmin(seq_ratio * A, clipped * A);
            loss -= obj / norm;
            int active = A >= 0 ? seq_ratio <= hi : seq_ratio >= lo;
            seq_grad = active ? -(seq_ratio * A) / ((e - b) * norm) : 0.0;
        }
        for (int t = b; t < e; t++) {
            double r = exp((double)logp[t] - (double)logp_old[t]);
            double A = adv[t], g = 0;
            note_ratio(st, cfg, r);
            st->n_tokens += 1;
            switch (cfg->kind) {
            case LOSS_CISPO: {
                // J = w * A * log pi, w = sg(clip(r)): every token keeps its gradient through log pi
                double w = fmin(fmax(r, lo), hi);
                int drop = cfg->eq7_mask && ((A > 0 && r > hi) || (A < 0 && r < lo));
                if (drop) {
                    st->masked += 1;
                } else {
                    loss -= w * A * (double)logp[t] / norm;
                    g = -(w * A) / norm;
                }
                break;
            }
            case LOSS_GRPO:
            case LOSS_DAPO: {
                // min(r A, clip(r) A): zero gradient once the clipped term is the smaller one
                double clipped = fmin(fmax(r, lo), hi);
                loss -= fmin(r * A, clipped * A) / norm;
                int active = A >= 0 ? r <= hi : r >= lo;
                if (active) g = -(r * A) / norm;
                else st->masked += 1;
                break;
            }
            case LOSS_GSPO:
                g = seq_grad;
                if (seq_grad == 0.0) st->masked += 1;
                break;
            }
            if (cfg->kl_coef > 0 && logp_ref) {  // k3 = exp(ref - lp) - (ref - lp) - 1
                double d = (double)logp_ref[t] - (double)logp[t];
                double k3 = exp(d) - d - 1.0;
                st->kl_ref_sum += k3;
                double kn = cfg->kind == LOSS_GSPO ? (e - b) * norm : norm;
                loss += cfg->kl_coef * k3 / kn;
                g += cfg->kl_coef * (1.0 - exp(d)) / kn;
            }
            dlogp[t] = (float)g;
        }
    }
    st->loss += loss;
    return loss;
}
