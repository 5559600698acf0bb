// rl/loss.h — advantages and policy-gradient losses (docs/rl.md): CISPO, PPO-clip/GRPO, DAPO, GSPO.
// defines: adv_config_t, advantages_group, reward_overlong_penalty, group_has_signal,
//          loss_config_t, loss_stats_t, policy_loss, loss_kind_parse
//
// The losses never see logits: they turn per-token log-probs into dLoss/dlogp per token, which the
// fused LM-head kernel (lmhead_logprob_backward_cpu) turns into the logits gradient
//     dL/dz_t = dlogp_t * (onehot(o_t) - softmax(z_t)),
// so the [T, V] logits never live in memory at once.
#ifndef CISPO_RL_LOSS_H
#define CISPO_RL_LOSS_H

#include <stdint.h>

// ---- advantages ----
enum adv_kind { ADV_GROUP_NORM = 0, ADV_GROUP_NO_STD = 1, ADV_RLOO = 2 };

typedef struct {
    int kind;        // ADV_GROUP_NORM: (R - mean) / (std + eps); ADV_GROUP_NO_STD: R - mean;
                     // ADV_RLOO: R_i - mean of the other G-1 rewards
    double eps;      // 1e-6
} adv_config_t;

// rewards [n_groups * G] (group-major) -> adv [n_groups * G]. std is the sample standard deviation
// (divides by G-1, as torch.std); G == 1 gives advantage 0.
void advantages_group(float *adv, const float *rewards, int n_groups, int G, const adv_config_t *cfg);
// 1 when a group's rewards are not all equal (it carries a learning signal); DAPO's dynamic
// sampling drops the others.
int group_has_signal(const float *rewards, int G);
// DAPO's soft overlong punishment: 0 up to max_len - cache_len, then linear down to -1 at max_len,
// -1 beyond.
float reward_overlong_penalty(int length, int max_len, int cache_len);

// ---- losses ----
enum loss_kind { LOSS_CISPO = 0, LOSS_GRPO = 1, LOSS_DAPO = 2, LOSS_GSPO = 3 };

typedef struct {
    int kind;
    double eps_low, eps_high;  // CISPO defaults 1.0 / 4.0 (no effective lower bound); GRPO 0.2 / 0.2;
                               // DAPO 0.2 / 0.28; GSPO 3e-4 / 4e-4
    int eq7_mask;              // CISPO Eq. 7: drop tokens with A > 0, r > 1+eps_high and A < 0, r < 1-eps_low
    double kl_coef;            // k3 KL to a reference policy (0: off; needs logp_ref)
} loss_config_t;

// Fills the defaults of a kind (eps_low, eps_high; mask off; no KL).
void loss_config_defaults(loss_config_t *cfg, int kind);
// "cispo" | "grpo" | "ppo" | "dapo" | "gspo" -> kind, or -1.
int loss_kind_parse(const char *name);
const char *loss_kind_name(int kind);

typedef struct {
    double loss;                 // this call's contribution to the global loss
    double n_tokens;             // tokens seen
    double clip_low, clip_high;  // tokens whose ratio was clipped below / above (counts)
    double masked;               // tokens with zero gradient (PPO clipping or the Eq. 7 mask)
    double weight_sum, weight_max;  // importance weights r (before clipping)
    double kl_old_sum;           // k3 estimate of KL(old || new) summed over tokens
    double kl_ref_sum;           // k3 to the reference, summed (when kl_coef > 0)
} loss_stats_t;

// One minibatch's share of the loss. logp, logp_old, logp_ref (or NULL) [n] per response token;
// adv [n] per token (the sequence's advantage broadcast); seq_offsets[n_seq+1] delimit the sequences
// (GSPO's sequence ratio, per-sequence counts). norm = the normaliser of the WHOLE update batch:
// the total response-token count across all minibatch pieces and ranks (token-level
// normalisation) for CISPO/GRPO/DAPO, the total sequence count for GSPO.
// Writes dlogp [n] = dLoss/dlogp (overwrites) and adds to *st. Returns this call's loss.
double policy_loss(const loss_config_t *cfg, const float *logp, const float *logp_old, const float *logp_ref,
                   const float *adv, const int32_t *seq_offsets, int n_seq, double norm, float *dlogp,
                   loss_stats_t *st);

#endif
