// trainer/run_config.h — every key of `cispo train` (a YAML file plus key=value overrides), with its
// type, range, default and one line of help, validated through trainer/keyconf.
// defines: run_config_t, run_config_keys, run_config_n_keys, run_config_load, run_config_load_cli,
//          run_config_check
//
// The table in run_config.c is the single list of keys: `cispo train --keys` prints it, the resolved
// copy in run_dir/config.yaml is written from it, and an unknown key is an error naming the nearest.
#ifndef CISPO_TRAINER_RUN_CONFIG_H
#define CISPO_TRAINER_RUN_CONFIG_H

#include "trainer/keyconf.h"

#define RUN_PATH_MAX 512

enum old_logp_source { OLD_LOGP_ROLLOUT = 0, OLD_LOGP_RECOMPUTE = 1 };

// What dynamic sampling reads to decide that a group carries signal.
enum ds_metric { DS_METRIC_ACCURACY = 0, DS_METRIC_REWARD = 1 };

enum run_device { RUN_DEVICE_CPU = 0, RUN_DEVICE_CUDA = 1, RUN_DEVICE_AUTO = 2 };

typedef struct {
    // ---- run ----
    char out[RUN_PATH_MAX];        // run directory
    int seed;
    char resume[RUN_PATH_MAX];     // checkpoint to continue from ("" none, "auto" the latest in out)
    int save_every;                // checkpoint every k steps (0: only at the end)
    double save_minutes;           // also a checkpoint when this many minutes passed since the last (0: off)
    int overwrite;                 // a fresh run may replace the run already in out
    int allow_config_change;       // resume even when computing keys differ from out/config.yaml
    int halt_after;                // stop after this many steps (SFT + RL) with a checkpoint (0: never)
    int dry_run;                   // check the run (config, data, verifiers, memory plan), stop before the weights
    int keep_checkpoints;          // most recent checkpoints kept (0: all)
    int samples;                   // write rollout samples to out/samples.h5
    int report;                    // write out/report.html at the end
    int quiet;                     // no per-step console line
    // ---- model and data ----
    char model[RUN_PATH_MAX];      // a model preset (.yaml), config.json, HF directory or .h5 checkpoint
    char tokenizer[RUN_PATH_MAX];  // tokenizer.json ("" = the model directory's)
    char train_data[RUN_PATH_MAX]; // JSONL of prompts, or "arithmetic" for the synthetic task
    char eval_data[RUN_PATH_MAX];  // held-out JSONL, or "arithmetic" (a disjoint split)
    char chat_template[RUN_PATH_MAX];  // prompts' chat template: auto (the tokenizer's), none, or a file
    char prompt_key[128], answer_key[128], response_key[128], id_key[128], tests_key[128];  // record fields ("": defaults)
    int task_dmin, task_dmax;      // synthetic arithmetic difficulty range (datasets/synth.h)
    double heldout_frac;           // fraction of record ids held out
    int train_size, eval_size;     // records used (0: all of the file; synthetic: generated count)
    // ---- SFT warm start ----
    int sft_steps;
    int sft_batch;                 // demonstrations per SFT update
    double sft_lr;                 // -1: 3e-3 for models under 10 M parameters (the tiny demo), else required
    int sft_warmup;
    int sft_lr_schedule;           // enum lr_schedule
    // ---- RL ----
    int steps;                     // RL steps (rollout batch + its updates)
    int prompts_per_step;
    int group_size;                // G samples per prompt
    int minibatches;               // optimizer updates per rollout batch (M1: 16)
    int max_new_tokens;            // the largest generation budget (sizes the engine's context)
    char max_new_tokens_schedule[RUN_PATH_MAX];  // "step:tokens,..." by RL steps done ("": fixed)
    double temperature, top_p;
    int top_k;
    int loss;                      // enum loss_kind
    double eps_low, eps_high;      // -1: the loss's default (CISPO 1.0/4.0, GRPO 0.2/0.2, DAPO 0.2/0.28)
    int eq7_mask;
    double eq7_eps_low, eq7_eps_high;  // the Eq. 7 mask's own bounds (0.2 / 0.28)
    double clip_ratio_c;           // PPO dual clip for A < 0 (0: off)
    int adv;                       // enum adv_kind
    int old_logprobs;              // enum old_logp_source
    int dynamic_sampling;          // -1: on for dapo only; 0/1 forces
    int dynamic_max_rounds;        // extra rollout rounds to refill the batch
    int dynamic_sampling_metric;   // enum ds_metric (accuracy: DAPO's rule)
    int overlong_cache;            // DAPO soft overlong punishment window (0: off; -1: dapo default)
    int rep_n;                     // repetition early truncation: n tokens each with p > rep_p
    double rep_p;
    double rep_reward;             // reward given to repetition-truncated samples
    double kl_coef;                // KL to the frozen reference policy (0: off)
    int kl_estimator;              // enum kl_kind
    char ref_model[RUN_PATH_MAX];  // the reference's weights ("": the policy when RL starts)
    double entropy_coef;           // entropy bonus weight (0: off)
    char tools[256];               // tools of multi-turn rollouts, comma-separated ("": single turn)
    char tool_format[32];          // how calls are written (rl/tools.h tool_formats)
    int max_tool_calls;            // tool calls per sample (the turn budget)
    char verifier[32];             // verifier for records that do not name one
    int reward_workers;
    double max_verifier_failed;    // stop when a step's failed-verdict fraction exceeds this (1: never)
    char remote_reward_url[RUN_PATH_MAX];  // the "remote" verifier's service (rl/remote_reward.h)
    char genrm_url[RUN_PATH_MAX], genrm_model[128];  // the "genrm" judge (rl/genrm.h)
    char code_sandbox_url[RUN_PATH_MAX];   // the "code" verifier's remote sandbox ("" : the local one)
    double verifier_timeout;       // seconds per request of the remote verifiers
    int verifier_retries;          // retries after a request's first attempt
    // ---- optimizer ----
    double lr;                     // -1: 1e-3 for models under 10 M parameters (the tiny demo), else required
    int warmup;
    int lr_schedule;               // enum lr_schedule
    double lr_min_ratio;
    double beta1, beta2, adam_eps, weight_decay, grad_clip;
    int max_nonfinite_updates;     // stop after this many skipped (non-finite gradient) updates in a row
    double aux_coef;               // MoE load-balancing loss weight (-1: the model config's)
    int micro_tokens;              // tokens per forward/backward micro-batch (memory plan)
    int recompute;                 // activation recompute: 0 off, 1 full (MODEL_RECOMPUTE), 2 cheap (MODEL_RECOMPUTE_CHEAP)
    int memory_check;              // stop a run whose memory plan exceeds the host's or GPU's (train_memory_check)
    int device;                    // enum run_device: where the model trains and decodes
    int grad_dtype;                // dtype of the parameter gradients: 0 fp32, 1 bf16 (DTYPE_*; CUDA, one rank)
    int zero;                      // ZeRO stage over the data-parallel ranks: 0 none, 1 moments sharded
    int overlap_grad_reduce;       // data parallel without ZeRO or EP: each layer's gradient all-reduce starts
                                   // as soon as the last micro-batch's backward finishes the layer
    int ep;                        // expert-parallel group size: world = ep x data-parallel degree (1: none)
    int routing_replay;            // the training forwards of an RL step replay the rollout's expert choices
    int rollout_slots;             // sequences decoded together
    // ---- evaluation ----
    int eval_every;                // held-out accuracy every k RL steps (0: before and after only)
    int eval_greedy;               // greedy decoding for held-out accuracy (else sampled at temperature)
    int eval_samples;              // samples per held-out prompt when not greedy
} run_config_t;

extern const keyconf_key_t run_config_keys[];
extern const int run_config_n_keys;

// Defaults, then the YAML file (NULL: none), then key=value overrides. 0 or -1 (+ message naming the
// file:line or "command line" and the key).
int run_config_load(run_config_t *c, const char *yaml_path, char **overrides, int n_overrides);
// The command line of train, eval and demo (cli->keys is run_config_keys): an optional CONFIG.yaml
// (when cli->max_positional is 1; default_yaml otherwise or when none is given, NULL: none), then
// options in any keyconf_parse_cli form over it. *yaml_used (may be NULL) is the file read; given
// (run_config_n_keys entries, may be NULL) marks the keys the command line set. 0, 1 when --help was
// printed, -1 + message.
int run_config_load_cli(run_config_t *c, const keyconf_cli_t *cli, int argc, char **argv, const char *default_yaml,
                        const char **yaml_used, unsigned char *given);
// Cross-key checks (prompts_per_step * group_size divisible into minibatches, ...). 0 or -1 + message.
int run_config_check(const run_config_t *c);
// The generation budget of the RL step after rl_done completed steps: max_new_tokens_schedule's
// entry with the largest start <= rl_done, max_new_tokens before the first entry or without one.
int run_config_max_new_tokens(const run_config_t *c, int rl_done);

#endif
