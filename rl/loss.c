// rl/loss.c — advantages and the policy-gradient losses of docs/rl.md (CISPO, PPO-clip/GRPO, DAPO, GSPO).
// Each loss returns dLoss/dlogp per token; see rl/loss.h for the contract.
#include "rl/loss.h"

#include <math.h>
#include <string.h>

void advantages_group_valid(float *adv, const float *rewards, const unsigned char *valid, int n_groups, int G,
                            const adv_config_t *cfg) {
    for (int g = 0; g < n_groups; g++) {
        const float *r = rewards + (size_t)g * G;
        const unsigned char *ok = valid ? valid + (size_t)g * G : NULL;
        float *a = adv + (size_t)g * G;
        double sum = 0;
        int n = 0;
        for (int i = 0; i < G; i++)
            if (!ok || ok[i]) sum += r[i], n++;
        for (int i = 0; i < G; i++) a[i] = 0.0f;
        if (n < 2) continue;
        double mean = sum / n;
        if (cfg->kind == ADV_RLOO) {  // baseline: mean of the other n-1 samples
            for (int i = 0; i < G; i++)
                if (!ok || ok[i]) a[i] = (float)(r[i] - (sum - r[i]) / (n - 1));
            continue;
        }
        double var = 0;
        for (int i = 0; i < G; i++)
            if (!ok || ok[i]) var += (r[i] - mean) * (r[i] - mean);
        double std = sqrt(var / (n - 1));  // sample std, as torch.std
        double den = cfg->kind == ADV_GROUP_NO_STD ? 1.0 : std + cfg->eps;
        for (int i = 0; i < G; i++)
            if (!ok || ok[i]) a[i] = (float)((r[i] - mean) / den);
    }
}

void advantages_group(float *adv, const float *rewards, int n_groups, int G, const adv_config_t *cfg) {
    advantages_group_valid(adv, rewards, NULL, n_groups, G, cfg);
}

int group_has_signal_valid(const float *values, const unsigned char *valid, int G) {
    int first = -1;
    for (int i = 0; i < G; i++) {
        if (valid && !valid[i]) continue;
        if (first < 0) first = i;
        else if (values[i] != values[first]) return 1;
    }
    return 0;
}

int group_has_signal(const float *rewards, int G) { return group_has_signal_valid(rewards, NULL, G); }

float reward_overlong_penalty(int length, int max_len, int cache_len) {
    int soft = max_len - cache_len;
    if (length <= soft) return 0.0f;
    if (length <= max_len && cache_len > 0) return (float)(soft - length) / (float)cache_len;
    return -1.0f;
}

void loss_config_defaults(loss_config_t *cfg, int kind) {
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = kind;
    cfg->mask_eps_low = 0.2;  // Eq. 7's own bounds (M1's unified formulation), not the weight clip's
    cfg->mask_eps_high = 0.28;
    cfg->kl_kind = KL_K3;
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

int kl_kind_parse(const char *name) {
    static const char *const kl_names[] = {"k1", "k2", "k3"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(name, kl_names[i])) return i;
    return -1;
}

// exp of a log-ratio clamped to +-LOSS_LOG_RATIO_MAX: a finite ratio whatever the log-probs.
static double ratio_of(double log_ratio) {
    return exp(fmin(fmax(log_ratio, -LOSS_LOG_RATIO_MAX), LOSS_LOG_RATIO_MAX));
}

// Importance-ratio bookkeeping shared by every kind; r is the ratio the loss clips (GSPO: the
// sequence's), r_tok the token's (for KL(old || new)).
static void note_ratio(loss_stats_t *st, const loss_config_t *cfg, double r, double r_tok) {
    st->weight_sum += r;
    if (r > st->weight_max) st->weight_max = r;
    if (r < 1.0 - cfg->eps_low) st->clip_low += 1;
    if (r > 1.0 + cfg->eps_high) st->clip_high += 1;
    st->kl_old_sum += (r_tok - 1.0) - log(r_tok);  // k3 estimate of KL(old || new) under samples from old
}

// PPO-clip's rule for one ratio: 1 when the unclipped term r A is the minimum (it carries the
// gradient), 0 when the clipped term or the dual clip's floor c*A (A < 0, r > c) takes over.
static int ppo_active(const loss_config_t *cfg, double r, double A, double *obj) {
    const double lo = 1.0 - cfg->eps_low, hi = 1.0 + cfg->eps_high;
    double clipped = fmin(fmax(r, lo), hi);
    *obj = fmin(r * A, clipped * A);
    int active = A >= 0 ? r <= hi : r >= lo;
    if (A < 0 && cfg->clip_ratio_c > 1 && cfg->clip_ratio_c * A > *obj) {  // dual clip: max(obj, c A)
        *obj = cfg->clip_ratio_c * A;
        active = 0;
    }
    return active;
}

double policy_loss(const loss_config_t *cfg, const float *logp, const float *logp_old, const float *logp_ref,
                   const float *entropy, const float *adv, const int32_t *seq_offsets, int n_seq, double norm,
                   float *dlogp, loss_stats_t *st) {
    double loss = 0;
    const double lo = 1.0 - cfg->eps_low, hi = 1.0 + cfg->eps_high;
    const double mlo = 1.0 - cfg->mask_eps_low, mhi = 1.0 + cfg->mask_eps_high;
    for (int s = 0; s < n_seq; s++) {
        int b = seq_offsets[s], e = seq_offsets[s + 1];
        if (e <= b) continue;
        double seq_ratio = 0, seq_grad = 0;
        int seq_active = 1;
        // GSPO weighs every token of a sequence alike; the others weigh tokens, normalised by N tokens
        const double kn = cfg->kind == LOSS_GSPO ? (e - b) * norm : norm;
        if (cfg->kind == LOSS_GSPO) {  // sequence-level ratio: exp(mean log ratio)
            double m = 0;
            for (int t = b; t < e; t++) m += (double)logp[t] - (double)logp_old[t];
            seq_ratio = ratio_of(m / (e - b));
            double A = adv[b], obj;
            seq_active = ppo_active(cfg, seq_ratio, A, &obj);
            loss -= obj / norm;
            seq_grad = seq_active ? -(seq_ratio * A) / ((e - b) * norm) : 0.0;
        }
        for (int t = b; t < e; t++) {
            double r = ratio_of((double)logp[t] - (double)logp_old[t]);
            double A = adv[t], g = 0;
            note_ratio(st, cfg, cfg->kind == LOSS_GSPO ? seq_ratio : r, r);
            st->n_tokens += 1;
            switch (cfg->kind) {
            case LOSS_CISPO: {
                // J = w * A * log pi, w = sg(clip(r)): every token keeps its gradient through log pi
                double w = fmin(fmax(r, lo), hi);
                int drop = cfg->eq7_mask && ((A > 0 && r > mhi) || (A < 0 && r < mlo));
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
                // min(r A, clip(r) A) (and the dual clip): zero gradient once another term takes over
                double obj;
                int active = ppo_active(cfg, r, A, &obj);
                loss -= obj / norm;
                if (active) g = -(r * A) / norm;
                else st->masked += 1;
                break;
            }
            case LOSS_GSPO:
                g = seq_grad;
                if (!seq_active) st->masked += 1;
                break;
            }
            if (logp_ref && cfg->kl_coef > 0) {  // d = log pi_theta - log pi_ref
                double d = fmin(fmax((double)logp[t] - (double)logp_ref[t], -LOSS_LOG_RATIO_MAX), LOSS_LOG_RATIO_MAX);
                double kl, dkl;
                switch (cfg->kl_kind) {
                case KL_K1: kl = d, dkl = 1.0; break;
                case KL_K2: kl = 0.5 * d * d, dkl = d; break;
                default: kl = exp(-d) + d - 1.0, dkl = 1.0 - exp(-d); break;  // k3
                }
                st->kl_ref_sum += kl;
                loss += cfg->kl_coef * kl / kn;
                g += cfg->kl_coef * dkl / kn;
            }
            if (entropy) {
                st->entropy_sum += entropy[t];
                if (cfg->entropy_coef != 0) {  // loss -= c * H; score-function gradient (loss.h)
                    loss -= cfg->entropy_coef * (double)entropy[t] / kn;
                    g += cfg->entropy_coef * ((double)logp[t] + (double)entropy[t]) / kn;
                }
            }
            dlogp[t] = (float)g;
        }
    }
    st->loss += loss;
    return loss;
}
