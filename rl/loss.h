// rl/loss.h — advantages and policy-gradient losses (docs/rl.md): CISPO, PPO-clip/GRPO, DAPO, GSPO.
// defines: adv_config_t, advantages_group, advantages_group_valid, reward_overlong_penalty, group_has_signal,
//          group_has_signal_valid, loss_config_t, loss_stats_t, policy_loss, loss_kind_parse, kl_kind_parse,
//          LOSS_LOG_RATIO_MAX
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
// The same over the samples with valid[i] != 0 only (valid NULL: all): a failed verification (the
// verifier could not run) is not a reward, so it stays out of its group's mean and std and gets
// advantage 0; a group with fewer than 2 valid samples gets 0 everywhere.
void advantages_group_valid(float *adv, const float *rewards, const unsigned char *valid, int n_groups, int G,
                            const adv_config_t *cfg);
// 1 when a group's values are not all equal (it carries a learning signal); DAPO's dynamic
// sampling drops the others. The trainer passes the verifier's accuracy (DAPO's rule) or the reward.
int group_has_signal(const float *rewards, int G);
// The same over the valid samples only (valid NULL: all).
int group_has_signal_valid(const float *values, const unsigned char *valid, int G);
// DAPO's soft overlong punishment: 0 up to max_len - cache_len, then linear down to -1 at max_len,
// -1 beyond.
float reward_overlong_penalty(int length, int max_len, int cache_len);

// ---- losses ----
enum loss_kind { LOSS_CISPO = 0, LOSS_GRPO = 1, LOSS_DAPO = 2, LOSS_GSPO = 3 };
// KL estimators (Schulman, "Approximating KL divergence"), d = log pi_theta - log pi_ref per token:
// k1 = d, k2 = d^2 / 2, k3 = exp(-d) + d - 1 (low variance, always >= 0; verl's low_var_kl).
enum kl_kind { KL_K1 = 0, KL_K2 = 1, KL_K3 = 2 };

// Log-ratios are clamped to [-LOSS_LOG_RATIO_MAX, LOSS_LOG_RATIO_MAX] before exp (as verl does): a
// log-ratio near 100 would otherwise give an inf ratio and an inf gradient.
#define LOSS_LOG_RATIO_MAX 20.0

typedef struct {
    int kind;
    double eps_low, eps_high;  // importance-weight clip. CISPO defaults 1.0 / 4.0 (no effective lower
                               // bound); GRPO 0.2 / 0.2; DAPO 0.2 / 0.28; GSPO 3e-4 / 4e-4
    int eq7_mask;              // CISPO Eq. 7: drop tokens with A > 0, r > 1+mask_eps_high and A < 0,
    double mask_eps_low;       //   r < 1-mask_eps_low; the mask's own bounds (M1's unified formulation),
    double mask_eps_high;      //   0.2 / 0.28 by default, separate from the weight clip
    double clip_ratio_c;       // PPO dual clip (GRPO/DAPO): for A < 0 the objective is at least c*A, so a
                               // token with r > c has no gradient; 0: off (must exceed 1 when on)
    double kl_coef;            // KL to a reference policy added to the loss (0: off; needs logp_ref)
    int kl_kind;               // enum kl_kind
    double entropy_coef;       // entropy bonus: loss -= entropy_coef * mean token entropy (needs entropy)
} loss_config_t;

// Fills the defaults of a kind (eps_low, eps_high; mask off with bounds 0.2 / 0.28; no dual clip; no
// KL (k3 when on); no entropy bonus).
void loss_config_defaults(loss_config_t *cfg, int kind);
// "cispo" | "grpo" | "ppo" | "dapo" | "gspo" -> kind, or -1.
int loss_kind_parse(const char *name);
const char *loss_kind_name(int kind);
// "k1" | "k2" | "k3" -> kind, or -1.
int kl_kind_parse(const char *name);

typedef struct {
    double loss;                 // this call's contribution to the global loss
    double n_tokens;             // tokens seen
    double clip_low, clip_high;  // tokens whose ratio was clipped below / above (counts); GSPO: the
                                 // tokens of sequences whose sequence ratio was clipped
    double masked;               // tokens whose policy-gradient term is zeroed by the loss's rule (PPO
                                 // clipping, GSPO's sequence clip, the dual clip, the Eq. 7 mask),
                                 // whatever the advantage: counted alike for every kind
    double weight_sum, weight_max;  // importance weights r (before clipping; GSPO: the sequence ratio)
    double kl_old_sum;           // k3 estimate of KL(old || new) summed over tokens
    double kl_ref_sum;           // the configured estimator of KL(theta || ref), summed (when logp_ref)
    double entropy_sum;          // token entropies, summed (when entropy is given)
} loss_stats_t;

// One minibatch's share of the loss. logp, logp_old, logp_ref (or NULL), entropy (or NULL: the
// entropy of pi_theta at each position, from the LM head) [n] per response token; adv [n] per token (the sequence's advantage broadcast); seq_offsets[n_seq+1] delimit the sequences
// (GSPO's sequence ratio, per-sequence counts). norm = the normaliser of the WHOLE update batch:
// the total response-token count across all minibatch pieces and ranks (token-level
// normalisation) for CISPO/GRPO/DAPO, the total sequence count for GSPO.
// Writes dlogp [n] = dLoss/dlogp (overwrites) and adds to *st. Returns this call's loss.
// The entropy bonus's gradient goes through dlogp too: the fused head gives no direct entropy
// gradient, so it uses the score-function form grad H_t = -E_y[(log pi(y) + H_t) grad log pi(y)]
// at the sampled token (H_t the exact entropy as baseline): dlogp_t += entropy_coef (logp_t + H_t) / N,
// unbiased when the tokens come from pi_theta (the first update; close after).
double policy_loss(const loss_config_t *cfg, const float *logp, const float *logp_old, const float *logp_ref,
                   const float *entropy, const float *adv, const int32_t *seq_offsets, int n_seq, double norm,
                   float *dlogp, loss_stats_t *st);

#endif
