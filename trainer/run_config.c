// trainer/run_config.c — the key table of `cispo train` (run_config.h).
#include "trainer/run_config.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "rl/tools.h"

#define O(f) offsetof(run_config_t, f)
#define S(f) sizeof(((run_config_t *)0)->f)
const keyconf_key_t run_config_keys[] = {
    // run
    {"out", KEY_STRING, O(out), 0, 0, NULL, "runs/run", "run directory (config, metrics, events, samples, checkpoints, report)", S(out)},
    {"seed", KEY_INT, O(seed), 0, 2147483647, NULL, "1", "seed of the initialisation, data order and sampling", 0},
    {"resume", KEY_PATH, O(resume), 0, 0, NULL, "", "checkpoint to continue from: a .h5 path, or auto (the latest in out)", S(resume)},
    {"save_every", KEY_INT, O(save_every), 0, 1e9, NULL, "50", "checkpoint every k steps (0: only at the end and by save_minutes)", 0},
    {"save_minutes", KEY_DOUBLE, O(save_minutes), 0, 1e6, NULL, "30", "also checkpoint when this many minutes passed since the last (0: off)", 0},
    {"overwrite", KEY_BOOL, O(overwrite), 0, 0, NULL, "false", "a fresh run replaces the run already in out (else it is refused)", 0},
    {"allow_config_change", KEY_BOOL, O(allow_config_change), 0, 0, NULL, "false", "resume even when keys that change the computation differ from out/config.yaml", 0},
    {"dry_run", KEY_BOOL, O(dry_run), 0, 0, NULL, "false", "check the run and stop before loading the model's weights: the keys, the model's config, the tokenizer, the data (read and tokenized), the verifiers' start-up probes, the device and the memory plan (printed on any device, and stopped on as memory_check says); exit status 0 when all hold; the run directory is not touched", 0},
    {"halt_after", KEY_INT, O(halt_after), 0, 1e9, NULL, "0", "stop after this many steps (SFT + RL) with a checkpoint, as if preempted (0: run to the end)", 0},
    {"keep_checkpoints", KEY_INT, O(keep_checkpoints), 0, 1e6, NULL, "3", "most recent checkpoints kept (0: all; ckpt-best.h5, the best held-out accuracy, is kept besides)", 0},
    {"samples", KEY_BOOL, O(samples), 0, 0, NULL, "true", "write rollout samples to out/samples.h5", 0},
    {"report", KEY_BOOL, O(report), 0, 0, NULL, "true", "write out/report.html with the curves at the end", 0},
    {"quiet", KEY_BOOL, O(quiet), 0, 0, NULL, "false", "no console line per step", 0},
    // model and data
    {"model", KEY_PATH, O(model), 0, 0, NULL, "tiny", "model: a preset name (tiny, bench-1b, minimax-m1: configs/models/NAME.yaml) or .yaml (random init), config.json, HF directory or .h5 checkpoint", S(model)},
    {"tokenizer", KEY_PATH, O(tokenizer), 0, 0, NULL, "", "tokenizer.json (empty: the one in the model directory)", S(tokenizer)},
    {"train_data", KEY_PATH, O(train_data), 0, 0, NULL, "arithmetic", "training prompts: a JSONL file, arithmetic (the synthetic task) or arithmetic_tools (its calculator-tool variant)", S(train_data)},
    {"eval_data", KEY_PATH, O(eval_data), 0, 0, NULL, "arithmetic", "held-out prompts: a JSONL file, or arithmetic / arithmetic_tools (split disjoint from training)", S(eval_data)},
    {"chat_template", KEY_PATH, O(chat_template), 0, 0, NULL, "auto", "chat template of message prompts: auto (chat_template.jinja or tokenizer_config.json beside the tokenizer; plain text when there is none), none (plain text), or a .jinja / tokenizer_config.json file", S(chat_template)},
    {"prompt_key", KEY_STRING, O(prompt_key), 0, 0, NULL, "", "record key of the prompt (\"\": prompt, messages, problem, question, instruction; a.b for nested keys)", S(prompt_key)},
    {"answer_key", KEY_STRING, O(answer_key), 0, 0, NULL, "", "record key of the gold answer (\"\": answer, final_answer, ...; verl's reward_model.ground_truth)", S(answer_key)},
    {"response_key", KEY_STRING, O(response_key), 0, 0, NULL, "", "record key of the SFT demonstration (\"\": response)", S(response_key)},
    {"id_key", KEY_STRING, O(id_key), 0, 0, NULL, "", "record key of the id (\"\": id, unique_id, problem_id, task_id; else file:line)", S(id_key)},
    {"tests_key", KEY_STRING, O(tests_key), 0, 0, NULL, "", "record key of code tests (\"\": tests, test_cases, input_output, public_tests)", S(tests_key)},
    {"task_dmin", KEY_INT, O(task_dmin), 1, 5, NULL, "1", "synthetic arithmetic: lowest difficulty (datasets/synth.h)", 0},
    {"task_dmax", KEY_INT, O(task_dmax), 1, 5, NULL, "2", "synthetic arithmetic: highest difficulty", 0},
    {"heldout_frac", KEY_DOUBLE, O(heldout_frac), 0.001, 0.999, NULL, "0.1", "fraction of record ids in the held-out split", 0},
    {"train_size", KEY_INT, O(train_size), 0, 1e8, NULL, "0", "training records used (0: all; synthetic: 20000)", 0},
    {"eval_size", KEY_INT, O(eval_size), 0, 1e7, NULL, "200", "held-out records used (0: all)", 0},
    // SFT
    {"sft_steps", KEY_INT, O(sft_steps), 0, 1e8, NULL, "0", "supervised warm-start updates before RL", 0},
    {"sft_batch", KEY_INT, O(sft_batch), 1, 1e6, NULL, "64", "demonstrations per SFT update", 0},
    {"sft_lr", KEY_DOUBLE, O(sft_lr), -1, 1, NULL, "-1", "SFT peak learning rate (-1: 3e-3 for models under 10 M parameters, the tiny demo's scale; required for larger models)", 0},
    {"sft_warmup", KEY_INT, O(sft_warmup), 0, 1e8, NULL, "20", "SFT warmup updates", 0},
    {"sft_lr_schedule", KEY_CHOICE, O(sft_lr_schedule), 0, 0, "constant|cosine|linear", "constant", "SFT decay after warmup", 0},
    // RL
    {"steps", KEY_INT, O(steps), 0, 1e8, NULL, "100", "RL steps (one rollout batch and its updates each)", 0},
    {"prompts_per_step", KEY_INT, O(prompts_per_step), 1, 1e6, NULL, "32", "prompts per rollout batch", 0},
    {"group_size", KEY_INT, O(group_size), 1, 1024, NULL, "8", "samples per prompt (G)", 0},
    {"minibatches", KEY_INT, O(minibatches), 1, 1024, NULL, "4", "optimizer updates per rollout batch (M1 used 16)", 0},
    {"max_new_tokens", KEY_INT, O(max_new_tokens), 1, 1e7, NULL, "32", "generation length budget (the largest, when max_new_tokens_schedule grows it)", 0},
    {"max_new_tokens_schedule", KEY_STRING, O(max_new_tokens_schedule), 0, 0, NULL, "", "length curriculum: \"step:tokens,...\" by RL steps done, e.g. \"0:4096,100:8192\" (each <= max_new_tokens; the overlong window and rep_n scale with it; \"\": fixed)", S(max_new_tokens_schedule)},
    {"temperature", KEY_DOUBLE, O(temperature), 1e-3, 100, NULL, "1.0", "sampling temperature of the rollout", 0},
    {"top_p", KEY_DOUBLE, O(top_p), 1e-6, 1, NULL, "1.0", "nucleus sampling (1: off)", 0},
    {"top_k", KEY_INT, O(top_k), 0, 1e7, NULL, "0", "top-k sampling (0: off)", 0},
    {"loss", KEY_CHOICE, O(loss), 0, 0, "cispo|grpo|dapo|gspo", "cispo", "policy loss", 0},
    {"eps_low", KEY_DOUBLE, O(eps_low), -1, 1e6, NULL, "-1", "lower clip of the importance weight (-1: the loss's default)", 0},
    {"eps_high", KEY_DOUBLE, O(eps_high), -1, 1e6, NULL, "-1", "upper clip (-1: the loss's default; CISPO 4.0)", 0},
    {"eq7_mask", KEY_BOOL, O(eq7_mask), 0, 0, NULL, "false", "CISPO Eq. 7 token mask (drops A>0 tokens with r > 1+eq7_eps_high, A<0 tokens with r < 1-eq7_eps_low)", 0},
    {"eq7_eps_low", KEY_DOUBLE, O(eq7_eps_low), 0, 1, NULL, "0.2", "Eq. 7 mask: lower bound, separate from the weight clip eps_low", 0},
    {"eq7_eps_high", KEY_DOUBLE, O(eq7_eps_high), 0, 1e6, NULL, "0.28", "Eq. 7 mask: upper bound, separate from the weight clip eps_high", 0},
    {"clip_ratio_c", KEY_DOUBLE, O(clip_ratio_c), 0, 1e6, NULL, "0", "PPO dual clip for grpo/dapo: A<0 tokens with r > c get no gradient (0: off; verl's default is 3)", 0},
    {"adv", KEY_CHOICE, O(adv), 0, 0, "group_norm|group_no_std|rloo", "group_norm", "advantage estimator", 0},
    {"old_logprobs", KEY_CHOICE, O(old_logprobs), 0, 0, "rollout|recompute", "rollout", "log pi_old from the rollout or recomputed with the training forward", 0},
    {"routing_replay", KEY_BOOL, O(routing_replay), 0, 0, NULL, "false", "the rollout records the experts each token was routed to and the step's training forwards use them instead of routing again, so that a router near-tie cannot send a token to other experts in training than in generation (docs/rl.md \"Routing replay\")", 0},
    {"dynamic_sampling", KEY_INT, O(dynamic_sampling), -1, 1, NULL, "-1", "drop all-equal-reward groups and refill (-1: on for dapo only)", 0},
    {"dynamic_max_rounds", KEY_INT, O(dynamic_max_rounds), 0, 100, NULL, "3", "extra rollout rounds dynamic sampling may take", 0},
    {"dynamic_sampling_metric", KEY_CHOICE, O(dynamic_sampling_metric), 0, 0, "accuracy|reward", "accuracy", "dynamic sampling keeps groups whose verifier accuracy differs (DAPO's rule) or whose shaped reward differs", 0},
    {"overlong_cache", KEY_INT, O(overlong_cache), -1, 1e7, NULL, "-1", "soft overlong punishment window in tokens (-1: max_new_tokens/4 for dapo, else off)", 0},
    {"rep_n", KEY_INT, O(rep_n), 0, 1e7, NULL, "3000", "repetition early truncation: stop after n tokens each with p > rep_p (0: off; M1: 3000)", 0},
    {"rep_p", KEY_DOUBLE, O(rep_p), 0, 1, NULL, "0.99", "repetition early truncation probability", 0},
    {"rep_reward", KEY_DOUBLE, O(rep_reward), -1e6, 1e6, NULL, "0", "reward of a repetition-truncated sample", 0},
    {"kl_coef", KEY_DOUBLE, O(kl_coef), 0, 1e6, NULL, "0", "KL penalty to the frozen reference policy in the loss (0: off, as M1)", 0},
    {"kl_estimator", KEY_CHOICE, O(kl_estimator), 0, 0, "k1|k2|k3", "k3", "KL estimator: k1 (log ratio), k2 (half squared), k3 (low variance)", 0},
    {"ref_model", KEY_PATH, O(ref_model), 0, 0, NULL, "", "reference policy of the KL: a model spec as 'model' (\"\": the policy's weights when RL starts)", S(ref_model)},
    {"entropy_coef", KEY_DOUBLE, O(entropy_coef), -100, 100, NULL, "0", "entropy bonus: loss -= entropy_coef * mean token entropy (0: off)", 0},
    {"tools", KEY_STRING, O(tools), 0, 0, NULL, "", "tools the policy may call in multi-turn rollouts, comma-separated: calculator, python (needs code_sandbox_url) (\"\": none, single-turn rollouts)", S(tools)},
    {"tool_format", KEY_STRING, O(tool_format), 0, 0, NULL, "hermes", "how the policy writes a tool call: hermes (<tool_call>{\"name\", \"arguments\"}</tool_call>) or demo (<<calculator 2+3>>, the tiny tokenizer's)", S(tool_format)},
    {"max_tool_calls", KEY_INT, O(max_tool_calls), 1, 1000, NULL, "4", "tool calls per sample; one more ends the sample (stop reason tool_budget)", 0},
    {"verifier", KEY_STRING, O(verifier), 0, 0, NULL, "math", "verifier for records that name none", S(verifier)},
    {"max_verifier_failed", KEY_DOUBLE, O(max_verifier_failed), 0, 1, NULL, "0.5", "stop the run when more than this fraction of a step's verdicts failed (1: never)", 0},
    {"remote_reward_url", KEY_STRING, O(remote_reward_url), 0, 0, NULL, "", "URL of the remote verifier's service, e.g. http://rm:9000/score (\"\": $CISPO_REMOTE_REWARD_URL)", S(remote_reward_url)},
    {"genrm_url", KEY_STRING, O(genrm_url), 0, 0, NULL, "", "base URL of the genrm judge, an OpenAI-compatible server (\"\": $CISPO_GENRM_URL)", S(genrm_url)},
    {"genrm_model", KEY_STRING, O(genrm_model), 0, 0, NULL, "", "model name the genrm server serves (\"\": $CISPO_GENRM_MODEL)", S(genrm_model)},
    {"code_sandbox_url", KEY_STRING, O(code_sandbox_url), 0, 0, NULL, "", "SandboxFusion-compatible service of the code verifier (\"\": $CISPO_CODE_SANDBOX_URL, else the local sandbox)", S(code_sandbox_url)},
    {"verifier_timeout", KEY_DOUBLE, O(verifier_timeout), 0.1, 3600, NULL, "60", "seconds per request of the remote, genrm and code-sandbox verifiers", 0},
    {"verifier_retries", KEY_INT, O(verifier_retries), 0, 100, NULL, "3", "retries after a verifier request's first attempt", 0},
    {"reward_workers", KEY_INT, O(reward_workers), 0, 256, NULL, "2", "verifier worker processes (0: rewards computed in the trainer)", 0},
    // optimizer
    {"lr", KEY_DOUBLE, O(lr), -1, 1, NULL, "-1", "RL peak learning rate (-1: 1e-3 for models under 10 M parameters, the tiny demo's scale; required for larger models, e.g. 1e-6 as M1)", 0},
    {"warmup", KEY_INT, O(warmup), 0, 1e8, NULL, "0", "RL warmup updates", 0},
    {"lr_schedule", KEY_CHOICE, O(lr_schedule), 0, 0, "constant|cosine|linear", "constant", "decay after warmup", 0},
    {"lr_min_ratio", KEY_DOUBLE, O(lr_min_ratio), 0, 1, NULL, "0.1", "floor of cosine/linear decay, fraction of the peak", 0},
    {"beta1", KEY_DOUBLE, O(beta1), 0, 0.999999, NULL, "0.9", "AdamW beta1", 0},
    {"beta2", KEY_DOUBLE, O(beta2), 0, 0.999999, NULL, "0.95", "AdamW beta2 (M1: 0.95)", 0},
    {"adam_eps", KEY_DOUBLE, O(adam_eps), 0, 1, NULL, "1e-15", "AdamW epsilon (M1: 1e-15)", 0},
    {"weight_decay", KEY_DOUBLE, O(weight_decay), 0, 10, NULL, "0.0", "AdamW decoupled weight decay", 0},
    {"grad_clip", KEY_DOUBLE, O(grad_clip), 0, 1e9, NULL, "1.0", "global gradient-norm clip (0: off)", 0},
    {"max_nonfinite_updates", KEY_INT, O(max_nonfinite_updates), 1, 1e6, NULL, "3", "stop the run after this many updates in a row skipped for a non-finite gradient norm", 0},
    {"aux_coef", KEY_DOUBLE, O(aux_coef), -1, 100, NULL, "-1", "MoE load-balancing loss weight (-1: the model's router_aux_loss_coef)", 0},
    {"device", KEY_CHOICE, O(device), 0, 0, "cpu|cuda|auto", "cpu", "where the model trains and decodes: cpu (the fp32 reference), cuda (bf16 activations, fp32 master weights), auto (cuda when a GPU is present)", 0},
    {"grad_dtype", KEY_CHOICE, O(grad_dtype), 0, 0, "fp32|bf16", "fp32", "dtype of the parameter gradients. fp32 sums micro-batches exactly; bf16 (device=cuda on one GPU) halves their memory (2 bytes a parameter less, the peak that transformers' bf16 training has) and the weight-gradient GEMMs' stores: each op still sums in fp32 and rounds once as it adds into the gradient, so the error grows with the number of micro-batches an update accumulates", 0},
    {"ep", KEY_INT, O(ep), 1, 1e6, NULL, "1", "expert parallelism under mpirun: groups of ep consecutive ranks split every MoE layer's experts (uneven splits allowed), the world is ep x data-parallel degree (ep must divide it); results equal ep=1's to fp32 summation order", 0},
    {"zero", KEY_INT, O(zero), 0, 1, NULL, "1", "ZeRO stage under mpirun: 1 shards the fp32 master and the AdamW moments over the ranks (each holds 1/N of them and all-gathers the working copy after each update; results equal 0's to fp32 summation order), 0 keeps them whole on every rank", 0},
    {"overlap_grad_reduce", KEY_BOOL, O(overlap_grad_reduce), 0, 0, NULL, "true", "under mpirun without ep: each layer's gradient reduction starts as soon as the update's last backward has finished that layer, overlapping the rest of the backward (on the CPU with zero 0: an MPI all-reduce; on GPUs with NCCL: an all-reduce or ZeRO-1's reduces on a side stream); results equal false's to fp32 summation order; false reduces the whole buffer after the backward", 0},
    {"micro_tokens", KEY_INT, O(micro_tokens), 16, 1e8, NULL, "4096", "tokens per forward/backward micro-batch", 0},
    {"recompute", KEY_CHOICE, O(recompute), 0, 0, "false|true|cheap", "false", "activation recompute. true: keep only each layer's input (and its expert choices) from the forward and run each layer's forward again just before its backward; activations shrink with the layer count (bench-1b's 16 layers: 806 to 123 KB a token in bf16 with the scratch, 6.5x) for one more forward of compute. cheap: keep what GEMMs and attention cores made and make the rest again (norm outputs, activations, rotated q and k, gates, dispatched rows) with no GEMM (bench-1b: 806 to 483 KB a token, 1.7x). Either way the gradients are the same bits", 0},
    {"memory_check", KEY_BOOL, O(memory_check), 0, 0, NULL, "true", "before loading the model, plan the memory the run will hold (weights, master, moments, gradients, activations for micro_tokens, rollout caches, the KL reference) and stop with the figures when it exceeds what the host has available (device=cpu; a GPU run: the fp32 weights, read on the host first) or the GPU's free memory; false tries anyway", 0},
    {"rollout_slots", KEY_INT, O(rollout_slots), 1, 1e6, NULL, "256", "sequences decoded together", 0},
    // evaluation
    {"eval_every", KEY_INT, O(eval_every), 0, 1e8, NULL, "0", "held-out accuracy every k RL steps (0: before and after RL only)", 0},
    {"eval_greedy", KEY_BOOL, O(eval_greedy), 0, 0, NULL, "true", "greedy decoding for held-out accuracy (else sampled)", 0},
    {"eval_samples", KEY_INT, O(eval_samples), 1, 1024, NULL, "4", "samples per held-out prompt when eval_greedy is false", 0},
};
#undef O
#undef S
const int run_config_n_keys = sizeof run_config_keys / sizeof run_config_keys[0];

int run_config_load(run_config_t *c, const char *yaml_path, char **overrides, int n_overrides) {
    memset(c, 0, sizeof *c);
    if (keyconf_defaults(c, run_config_keys, run_config_n_keys)) return -1;
    if (yaml_path && keyconf_apply_yaml(c, run_config_keys, run_config_n_keys, yaml_path)) return -1;
    for (int i = 0; i < n_overrides; i++)
        if (keyconf_apply_override(c, run_config_keys, run_config_n_keys, overrides[i])) return -1;
    return run_config_check(c);
}

int run_config_load_cli(run_config_t *c, const keyconf_cli_t *cli, int argc, char **argv, const char *default_yaml,
                        const char **yaml_used, unsigned char *given) {
    // A first pass finds the YAML file (and reports a bad option before the file is read); the
    // second applies the options over the file's values.
    const char *pos[1] = {NULL};
    int n_pos = 0;
    run_config_t *scratch = cispo_calloc(1, sizeof *scratch);
    int rc = keyconf_defaults(scratch, run_config_keys, run_config_n_keys);
    if (!rc) rc = keyconf_parse_cli(cli, scratch, argc, argv, pos, &n_pos, NULL);
    free(scratch);
    if (rc) return rc;
    const char *yaml = n_pos ? pos[0] : default_yaml;
    if (yaml_used) *yaml_used = yaml;
    memset(c, 0, sizeof *c);
    if (keyconf_defaults(c, run_config_keys, run_config_n_keys)) return -1;
    if (yaml && keyconf_apply_yaml(c, run_config_keys, run_config_n_keys, yaml)) return -1;
    if ((rc = keyconf_parse_cli(cli, c, argc, argv, pos, &n_pos, given))) return rc;
    return run_config_check(c);
}

int run_config_check(const run_config_t *c) {
    int batch = c->prompts_per_step * c->group_size;
    if (c->steps > 0 && c->minibatches > batch)
        return cispo_fail("keys 'minibatches' (%d) > prompts_per_step * group_size (%d): each update needs at least "
                          "one sample; lower minibatches", c->minibatches, batch);
    if (c->steps > 0 && c->group_size < 2)
        return cispo_fail("key 'group_size' is %d: group-normalised advantages need at least 2 samples per prompt",
                          c->group_size);
    if (!c->model[0]) return cispo_fail("key 'model' is empty: name a preset, config.json, HF directory or checkpoint");
    if (c->task_dmin > c->task_dmax)
        return cispo_fail("key 'task_dmin' (%d) exceeds task_dmax (%d)", c->task_dmin, c->task_dmax);
    if ((c->lr < 0 && c->lr != -1) || (c->sft_lr < 0 && c->sft_lr != -1))
        return cispo_fail("keys 'lr' (%g) and 'sft_lr' (%g): a learning rate is >= 0, or -1 for the tiny demo's default",
                          c->lr, c->sft_lr);
    if (c->clip_ratio_c != 0 && c->clip_ratio_c <= 1)
        return cispo_fail("key 'clip_ratio_c' is %g: the dual clip's bound must exceed 1 (verl uses 3), or 0 for off",
                          c->clip_ratio_c);
    if (c->max_new_tokens_schedule[0] && run_config_max_new_tokens(c, -1) < 0) return -1;
    if (c->tools[0] && !tool_format_find(c->tool_format))
        return cispo_fail("key 'tool_format' is '%s': use hermes or demo (rl/tools.h)", c->tool_format);
    return 0;
}

// Parses max_new_tokens_schedule; rl_done < 0 only validates (0 or -1 + message).
int run_config_max_new_tokens(const run_config_t *c, int rl_done) {
    const char *p = c->max_new_tokens_schedule;
    int budget = c->max_new_tokens;
    long last = -1;
    while (*p) {
        char *end;
        long at = strtol(p, &end, 10), tokens;
        if (end == p || *end != ':' || at < 0) goto bad;
        p = end + 1;
        tokens = strtol(p, &end, 10);
        if (end == p || (*end && *end != ',')) goto bad;
        if (at <= last)
            return cispo_fail("key 'max_new_tokens_schedule' (\"%s\"): steps must increase (%ld after %ld)",
                              c->max_new_tokens_schedule, at, last);
        if (tokens < 1 || tokens > c->max_new_tokens)
            return cispo_fail("key 'max_new_tokens_schedule' (\"%s\"): %ld tokens at step %ld is outside [1, "
                              "max_new_tokens = %d]; raise max_new_tokens to the largest budget of the schedule",
                              c->max_new_tokens_schedule, tokens, at, c->max_new_tokens);
        if (rl_done >= 0 && at <= rl_done) budget = (int)tokens;
        last = at;
        p = *end ? end + 1 : end;
    }
    return rl_done < 0 ? 0 : budget;
bad:
    return cispo_fail("key 'max_new_tokens_schedule' (\"%s\"): expected \"step:tokens,step:tokens,...\", e.g. "
                      "\"0:4096,100:8192\"", c->max_new_tokens_schedule);
}
