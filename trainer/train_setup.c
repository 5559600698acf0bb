// trainer/train_setup.c — what a run needs before its first step: the model (preset, HF directory or
// checkpoint), the tokenizer, the prompt sets, the rollout engine and the scoring pool; and the
// checkpoint of a run's state.
// defines: train_load_model, train_load_model_ep, train_model_config, train_load_tokenizer, train_open, train_close,
//          train_save
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "rl/verifier.h"
#include "model/hf.h"
#include "model/moe_ep.h"
#include "trainer/checkpoint.h"
#include "trainer/dist_ep.h"
#include "trainer/dist_nccl.h"
#include "trainer/paths.h"
#include "trainer/train.h"
#include "trainer/train_data.h"

static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static int is_dir(const char *p) {
    struct stat st;
    return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int model_not_found(const char *spec) {
    return cispo_fail("model '%s': no such file, directory or preset (a preset name is one of "
                      "configs/models/NAME.yaml, e.g. tiny; paths in a config file are relative to the file, on the "
                      "command line to the working directory)", spec);
}

int train_load_model(const char *spec, uint64_t seed, model_config_t *cfg, float **params) {
    return train_load_model_ep(spec, seed, 1, 0, cfg, params);
}

int train_model_config(const char *spec_in, model_config_t *cfg) {
    char spec[4096];
    paths_model_spec(spec_in, spec, sizeof spec);
    if (ends_with(spec, ".h5")) return checkpoint_read_config(spec, cfg);
    char path[4200];
    snprintf(path, sizeof path, is_dir(spec) ? "%s/config.json" : "%s", spec);
    if (!is_dir(spec) && access(spec, F_OK)) return model_not_found(spec);
    return model_config_load(cfg, path) || model_config_validate(cfg, path) ? -1 : 0;
}

// Whether the fp32 weights this rank reads (EP rank ep_rank of ep: its experts from a checkpoint or a preset; an HF
// directory is read whole) fit in this host's memory at all; else -1 and a message in place of an allocation
// that would fail
static int weights_fit_host(const char *spec, int ep, int ep_rank) {
    model_config_t c;
    if (train_model_config(spec, &c)) return -1;
    int lo = 0, hi = c.n_experts;
    if (!is_dir(spec)) moe_ep_range(c.n_experts, ep, ep_rank, &lo, &hi);
    param_table_t t;
    param_table_build_experts(&t, &c, lo, hi);
    const double bytes = (double)t.n_floats * sizeof(float), gib = 1024.0 * 1024.0 * 1024.0;
    param_table_free(&t);
    size_t avail, total;
    if (cispo_host_memory(&avail, &total) || bytes <= (double)total) return 0;
    return cispo_fail("model '%s': the %.2f B parameters %s reads take %.1f GiB in fp32, more than this host's %.1f "
                      "GiB of memory (`cispo plan --model ...` sizes the GPUs a model needs)", spec, bytes / 4 / 1e9,
                      ep > 1 ? "this rank" : "it", bytes / gib, (double)total / gib);
}

int train_load_model_ep(const char *spec_in, uint64_t seed, int ep, int ep_rank, model_config_t *cfg, float **params) {
    char spec[4096];
    paths_model_spec(spec_in, spec, sizeof spec);  // a preset name: configs/models/NAME.yaml
    if (weights_fit_host(spec, ep, ep_rank)) return -1;
    if (ends_with(spec, ".h5")) {  // one file or a sharded index: only the pieces this rank holds are read
        checkpoint_t ck;
        if (checkpoint_load_ep(spec, ep, ep_rank, &ck)) return -1;
        *cfg = ck.cfg;
        *params = ck.params;
        ck.params = NULL;
        checkpoint_free(&ck);
        return 0;
    }
    if (is_dir(spec)) {  // read whole, then cut to this rank's experts
        param_table_t t;
        if (hf_load_dir(spec, cfg, &t, params)) return -1;
        param_table_free(&t);
        if (ep > 1) {
            int lo, hi;
            moe_ep_range(cfg->n_experts, ep, ep_rank, &lo, &hi);
            param_table_build_experts(&t, cfg, lo, hi);
            param_span_t *sp;
            int ns = param_table_spans(&t, cfg, &sp);
            float *mine = cispo_malloc(t.n_floats * sizeof(float));
            for (int i = 0; i < ns; i++) memcpy(mine + sp[i].off, *params + sp[i].full, sp[i].len * sizeof(float));
            free(sp), free(*params);
            *params = mine;
            param_table_free(&t);
        }
        return 0;
    }
    if (access(spec, F_OK)) return model_not_found(spec);
    if (model_config_load(cfg, spec) || model_config_validate(cfg, spec)) return -1;
    param_table_t t;
    int lo, hi;
    moe_ep_range(cfg->n_experts, ep, ep_rank, &lo, &hi);
    param_table_build_experts(&t, cfg, lo, hi);  // each tensor drawn from its own stream: the whole model's values
    *params = cispo_malloc(t.n_floats * sizeof(float));
    param_init_hf(*params, &t, cfg, seed);
    param_table_free(&t);
    return 0;
}

tokenizer_t *train_load_tokenizer(const char *path, const char *model_spec) {
    if (path && path[0]) return tokenizer_load(path);
    char p[1100];
    if (model_spec && is_dir(model_spec)) {
        snprintf(p, sizeof p, "%s/tokenizer.json", model_spec);
        return tokenizer_load(p);
    }
    cispo_fail("no tokenizer: set key 'tokenizer' to a tokenizer.json (model '%s' is not a directory holding one)",
               model_spec ? model_spec : "");
    return NULL;
}

// The remote verifiers read their settings from the environment in each scoring worker; the run's keys
// are put there before the workers are forked (a key left empty keeps what the environment says).
static void verifier_env(const run_config_t *c) {
    const char *urls[][2] = {{"CISPO_REMOTE_REWARD_URL", c->remote_reward_url}, {"CISPO_GENRM_URL", c->genrm_url},
                             {"CISPO_GENRM_MODEL", c->genrm_model}, {"CISPO_CODE_SANDBOX_URL", c->code_sandbox_url}};
    for (int i = 0; i < 4; i++)
        if (urls[i][1][0]) setenv(urls[i][0], urls[i][1], 1);
    const char *pre[] = {"CISPO_REMOTE_REWARD", "CISPO_GENRM", "CISPO_CODE_SANDBOX"};
    for (int i = 0; i < 3; i++) {
        char name[64], v[32];
        snprintf(name, sizeof name, "%s_TIMEOUT", pre[i]);
        snprintf(v, sizeof v, "%.17g", c->verifier_timeout);
        if (!getenv(name) || c->verifier_timeout != 60) setenv(name, v, 1);
        snprintf(name, sizeof name, "%s_RETRIES", pre[i]);
        snprintf(v, sizeof v, "%d", c->verifier_retries);
        if (!getenv(name) || c->verifier_retries != 3) setenv(name, v, 1);
    }
}

// The verifiers that reach a service (remote, genrm, a remote code sandbox) are tried once on the first
// record that names them before the run starts: a wrong URL or a server that is down stops the run here,
// with the reason, instead of turning every reward into a failed verdict.
static int probe_verifiers(const train_t *t) {
    const char *names[] = {"remote", "genrm", "code"};
    const char *keys[] = {"remote_reward_url", "genrm_url and genrm_model", "code_sandbox_url"};
    for (int k = 0; k < 3; k++) {
        if (k == 2 && !getenv("CISPO_CODE_SANDBOX_URL")) continue;  // the local sandbox checks itself when it starts
        const train_set_t *sets[2] = {&t->train, &t->eval};
        const train_example_t *e = NULL;
        for (int s = 0; s < 2 && !e; s++)
            for (int i = 0; i < sets[s]->n && !e; i++) {
                const char *v = sets[s]->ex[i].verifier ? sets[s]->ex[i].verifier : t->cfg.verifier;
                if (!strcmp(v, names[k])) e = &sets[s]->ex[i];
            }
        if (!e) continue;
        const verifier_t *v = verifier_find(names[k]);
        if (!v) continue;
        verify_request_t req = {e->answer, e->demo ? e->demo : (e->answer ? e->answer : ""), e->tests_json, e->fn_name,
                                e->prompt, NULL};
        verdict_t out;
        memset(&out, 0, sizeof out);
        if (v->verify(&req, &out) || out.failed)
            return cispo_fail("verifier '%s' failed its start-up probe: %s. Set key %s (or see docs/verifiers.md)",
                              names[k], out.reason[0] ? out.reason : cispo_last_error(), keys[k]);
    }
    return 0;
}

// Expert parallelism (run key ep): the grid over the world, the policy's experts split over its EP group
// (each rank's model holds its own experts only), and every optimizer of the run in EP mode. One run per
// process, so one grid.
// On GPUs with NCCL in the build the gradients, the optimizer's all-gathers and the EP exchange use NCCL
// communicators (bootstrapped over MPI: the world, the EP group, the EP data-parallel group); else MPI
// through host buffers.
static dist_ep_t ep_grid;
static int ep_on;
static dist_nccl_t *nccl_ep, *nccl_dp;  // the EP group's exchange; the EP data-parallel group's reductions

// The grid, before the model is loaded (a rank reads only its experts).
static int open_ep_grid(train_t *t) {
    if (t->cfg.ep == 1) return 0;
    if (dist_ep_init(&ep_grid, dist_world(), t->cfg.ep)) return -1;
    ep_on = 1;
    return 0;
}

static double mib(size_t floats) { return (double)floats * sizeof(float) / (1024.0 * 1024.0); }

static int open_ep(train_t *t) {
    dist_t *dw = dist_world();
    const int nccl = t->be.kind == BACKEND_CUDA && dw->world > 1 && dist_nccl_available();
    if (nccl) {
        dist_nccl_t *c = dist_nccl_init(dw, &t->be);
        if (!c) return -1;
        dist_nccl_set_world(c);
        optim_use_nccl(c, NULL);  // the optimizer's collectives on the device too
    }
    if (!ep_on) return 0;
    moe_ep_comm_t comm;
    dist_ep_comm(&ep_grid, &t->be, &comm);
    if (nccl) {
        if (!(nccl_ep = dist_nccl_init(&ep_grid.ep_group, &t->be))) return -1;
        dist_nccl_ep_comm(nccl_ep, &comm);
        // the expert part's gradient reduction and all-gather run over the EP data-parallel group
        if (ep_grid.dp_group.world > 1 && !(nccl_dp = dist_nccl_init(&ep_grid.dp_group, &t->be))) return -1;
        optim_use_nccl(dist_nccl_world(), nccl_dp);
    }
    if (moe_ep_attach(t->m, &comm)) return -1;
    optim_use_ep(&ep_grid, &t->m->table, &t->mcfg, t->cfg.zero);
    if (dw->rank == 0) {
        // what rank 0 holds: fp32 master and gradients of its own layout, and its share of the AdamW moments
        // (ZeRO-1: the dense part over the world, its experts over its DP group), against the whole model
        const param_table_t *tb = &t->m->table;
        const size_t n = tb->n_floats, all = tb->n_full, mom = train_moment_floats(t);
        printf("expert parallelism: %d ranks = ep %d x dp %d, %d experts per MoE layer; rank 0 holds experts [%d, %d): "
               "%zu of the model's %zu parameters; per rank fp32 master + gradients %.1f MiB (whole model %.1f MiB), "
               "AdamW moments %.1f MiB\n",
               dw->world, ep_grid.ep, ep_grid.dp, t->mcfg.n_experts, tb->e_lo, tb->e_hi, n, all, 2 * mib(n),
               2 * mib(all), 2 * mib(mom));
    }
    return 0;
}

int train_open(train_t *t, const run_config_t *cfg) {
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    t->heldout_before = NAN;
    verifier_env(cfg);
    // workers first, while the process is small (each is the program started again: trainer/reward_pool.c)
    t->pool = reward_pool_create(cfg->reward_workers, 60.0);
    if (!t->pool) return -1;
    if (open_ep_grid(t)) return -1;
    // the model's config first: the data, the backend and the memory check need it; the weights come after
    if (train_model_config(cfg->model, &t->mcfg)) return -1;
    if (!(t->tok = train_load_tokenizer(cfg->tokenizer, cfg->model))) return -1;
    if (tokenizer_vocab_size(t->tok) > t->mcfg.vocab_size)
        return cispo_fail("tokenizer %s has %d tokens but the model's vocab_size is %d: use a matching model",
                          cfg->tokenizer, tokenizer_vocab_size(t->tok), t->mcfg.vocab_size);
    t->eos_id = tokenizer_eos_id(t->tok);
    if (t->eos_id < 0) t->eos_id = t->mcfg.eos_token_id;
    t->aux_coef = cfg->aux_coef >= 0 ? (float)cfg->aux_coef : (float)t->mcfg.router_aux_loss_coef;
    if (cfg->tools[0]) {  // multi-turn tool use (rl/tools.h); python runs in the code sandbox service
        const char *url = cfg->code_sandbox_url[0] ? cfg->code_sandbox_url : getenv("CISPO_CODE_SANDBOX_URL");
        if (tools_create(&t->tool_registry, cfg->tools, url, cfg->verifier_timeout, 512)) return -1;
        t->tools = (rollout_tools_t){.tools = &t->tool_registry, .format = tool_format_find(cfg->tool_format),
                                     .tok = t->tok, .max_calls = cfg->max_tool_calls};
    }

    arith_task_t task = {(uint64_t)cfg->seed, cfg->task_dmin, cfg->task_dmax, cfg->heldout_frac};
    // records through the chat template (run key chat_template) and the field mapping (prompt_key, ...)
    const train_records_t rec = {cfg->chat_template, cfg->tokenizer, cfg->model,
                                 {cfg->prompt_key, cfg->answer_key, cfg->response_key, cfg->id_key, cfg->tests_key}};
    if (train_set_load_records(&t->train, cfg->train_data, cfg->train_size, &task, 0, cfg->eval_data, &rec))
        return -1;
    if (train_set_load_records(&t->eval, cfg->eval_data, cfg->eval_size, &task, 1, cfg->train_data, &rec))
        return -1;
    int max_prompt = cfg->micro_tokens - cfg->max_new_tokens;
    if (max_prompt < 1)
        return cispo_fail("key 'micro_tokens' (%d) must exceed max_new_tokens (%d)", cfg->micro_tokens,
                          cfg->max_new_tokens);
    if (train_set_tokenize(&t->train, t->tok, t->eos_id, max_prompt, &t->tools) ||
        train_set_tokenize(&t->eval, t->tok, t->eos_id, max_prompt, &t->tools))
        return -1;
    if (cfg->sft_steps > 0) {  // SFT learns from demonstrations; a bare gold answer is not one
        int missing = 0, first = -1;
        for (int i = 0; i < t->train.n; i++)
            if (!t->train.ex[i].demo) missing++, first = first < 0 ? i : first;
        if (missing)
            return cispo_fail("sft_steps=%d but %d of %d training records of %s have no demonstration "
                              "(key 'response'; the first is record %d: \"%.60s\"): SFT would train on "
                              "the bare answer. Add responses, or set sft_steps=0 to start with RL",
                              cfg->sft_steps, missing, t->train.n, cfg->train_data, first + 1,
                              t->train.ex[first].prompt ? t->train.ex[first].prompt : "");
    }
    if (probe_verifiers(t)) return -1;
    int longest = 0;
    for (int i = 0; i < t->train.n; i++) longest = t->train.ex[i].n_ids > longest ? t->train.ex[i].n_ids : longest;
    for (int i = 0; i < t->eval.n; i++) longest = t->eval.ex[i].n_ids > longest ? t->eval.ex[i].n_ids : longest;

    if (train_open_backend(t)) return -1;
    int e_lo = 0, e_hi = t->mcfg.n_experts;
    if (ep_on) moe_ep_range(t->mcfg.n_experts, ep_grid.ep, ep_grid.ep_rank, &e_lo, &e_hi);
    if (train_memory_check(t, e_lo, e_hi, longest + cfg->max_new_tokens + 1)) return -1;
    if (cfg->dry_run) return 1;
    float *params = NULL;
    if (train_load_model_ep(cfg->model, (uint64_t)cfg->seed, ep_on ? ep_grid.ep : 1, ep_on ? ep_grid.ep_rank : 0,
                            &t->mcfg, &params))
        return -1;
    t->m = model_create_experts(&t->be, &t->mcfg, NULL, cfg->micro_tokens, e_lo, e_hi, train_recompute_flags(cfg));
    train_upload(t, t->m->params, params, t->m->table.n_floats);
    model_sync_weights(t->m);
    free(params);
    if (open_ep(t)) return -1;
    t->engine = infer_create(t->m, cfg->rollout_slots, longest + cfg->max_new_tokens + 1);

    loss_config_defaults(&t->loss, cfg->loss);
    if (cfg->eps_low >= 0) t->loss.eps_low = cfg->eps_low;
    if (cfg->eps_high >= 0) t->loss.eps_high = cfg->eps_high;
    t->loss.eq7_mask = cfg->eq7_mask;
    t->dynamic_sampling = cfg->dynamic_sampling >= 0 ? cfg->dynamic_sampling : cfg->loss == LOSS_DAPO;
    t->overlong_cache = cfg->overlong_cache >= 0 ? cfg->overlong_cache
                        : cfg->loss == LOSS_DAPO ? cfg->max_new_tokens / 4 : 0;
    return 0;
}

void train_close(train_t *t) {
    if (t->engine) infer_free(t->engine);
    if (t->ref) model_free(t->ref);
    if (t->m) model_free(t->m);
    if (t->tok) tokenizer_free(t->tok);
    train_set_free(&t->train);
    train_set_free(&t->eval);
    optim_free(&t->opt);
    if (ep_on) {
        optim_use_ep(NULL, NULL, NULL, 0);
        dist_ep_free(&ep_grid);
        ep_on = 0;
    }
    optim_use_nccl(NULL, NULL);
    dist_nccl_free(nccl_ep);
    dist_nccl_free(nccl_dp);
    nccl_ep = nccl_dp = NULL;
    dist_nccl_free(dist_nccl_world());
    dist_nccl_set_world(NULL);
    reward_pool_free(t->pool);
    backend_release(&t->be);
    memset(t, 0, sizeof *t);
}

// The run state a checkpoint carries besides the tensors (a new string: cJSON_free it).
static char *run_state_json(const train_t *t) {
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "sft_done", t->sft_done);
    cJSON_AddNumberToObject(x, "rl_done", t->rl_done);
    cJSON_AddNumberToObject(x, "opt_phase", t->opt_phase);
    cJSON_AddNumberToObject(x, "opt_t", t->opt.t);
    cJSON_AddNumberToObject(x, "seed", t->cfg.seed);
    if (isfinite(t->heldout_before)) cJSON_AddNumberToObject(x, "heldout_before", t->heldout_before);
    char *extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    return extra;
}

// Expert parallelism: every rank writes its shard (the runs it alone updates, trainer/checkpoint.h), then,
// after all of them are in place, rank 0 the index. The index of a former save at path goes first, so a
// crash in between leaves no index that names half-written shards.
static int save_sharded(train_t *t, const char *path) {
    dist_t *dw = dist_world();
    const int root = dw->rank == 0, have_moments = t->opt_phase != 0;
    optim_t layout, *o = &t->opt;
    if (!o->ep) {  // no update yet: the same ownership, without moments
        optim_config_t oc = {0};
        optim_init_ep(&layout, t->m->be, &oc, &t->m->table, &t->mcfg, NULL, &ep_grid, t->cfg.zero);
        o = &layout;
    }
    double failed = 0;
    if (root && checkpoint_remove(path)) failed = 1;
    if (dist_allreduce_max_f64(dw, &failed, 1)) return -1;
    if (failed > 0) return root ? -1 : cispo_fail("rank 0 could not remove the former checkpoint %s", path);
    optim_range_t *r;
    const int nr = optim_owned(o, &r);
    size_t total = 0;
    for (int i = 0; i < nr; i++) total += r[i].len;
    float *hp = cispo_malloc((total ? total : 1) * sizeof(float)), *hm = NULL, *hv = NULL;
    if (have_moments) hm = cispo_malloc((total ? total : 1) * sizeof(float)), hv = cispo_malloc((total ? total : 1) * sizeof(float));
    optim_owned_values(o, t->m->params, hp, hm, hv);
    // the owned ranges of this rank's layout as runs of the whole model's
    param_span_t *sp;
    const int ns = param_table_spans(&t->m->table, &t->mcfg, &sp);
    int64_t *runs = cispo_malloc((size_t)(2 * (nr + ns) + 2) * sizeof(int64_t));
    int nrun = 0;
    for (int i = 0, j = 0; i < nr; i++) {
        size_t a = r[i].off, b = a + r[i].len;
        while (a < b) {
            while (sp[j].off + sp[j].len <= a) j++;
            const size_t e = sp[j].off + sp[j].len < b ? sp[j].off + sp[j].len : b, full = sp[j].full + (a - sp[j].off);
            if (nrun && (size_t)(runs[2 * nrun - 2] + runs[2 * nrun - 1]) == full) runs[2 * nrun - 1] += (int64_t)(e - a);
            else runs[2 * nrun] = (int64_t)full, runs[2 * nrun + 1] = (int64_t)(e - a), nrun++;
            a = e;
        }
    }
    int rc = checkpoint_save_shard(path, dw->rank, dw->world, t->sft_done + t->rl_done, runs, nrun, hp, hm, hv);
    free(runs), free(sp), free(r), free(hp), free(hm), free(hv);
    if (o == &layout) optim_free(&layout);
    failed = rc != 0;
    if (dist_allreduce_max_f64(dw, &failed, 1)) return -1;  // the barrier: every shard is in place
    if (failed > 0) return rc ? rc : cispo_fail("another rank could not write its shard of the checkpoint %s", path);
    if (root) {
        char *extra = run_state_json(t);
        uint64_t rng[4] = {t->sft_data.epoch, t->sft_data.cursor, t->rl_data.epoch, t->rl_data.cursor};
        rc = checkpoint_save_index(path, dw->world, have_moments, &t->mcfg, t->sft_done + t->rl_done, rng, 4, extra);
        cJSON_free(extra);
    }
    failed = rc != 0;
    if (dist_allreduce_max_f64(dw, &failed, 1)) return -1;
    if (failed > 0 && !rc) rc = cispo_fail("rank 0 could not write the checkpoint index %s", path);
    return rc;
}

int train_save(train_t *t, const char *path) {
    if (ep_on) return save_sharded(t, path);
    dist_t *dw = dist_world();
    const int root = dw->rank == 0;
    int have_moments = t->opt_phase != 0;
    // checkpoints hold the whole fp32 master and moments wherever they live (a GPU run resumes on the CPU;
    // ZeRO-1 shards meet on rank 0, so a run resumes on any number of ranks)
    const size_t n = t->m->table.n_floats;
    const int host = t->be.kind == BACKEND_CPU;
    // on the CPU the moments of an unsharded optimizer are written where they are, as the weights are: no copies
    const int moments_in_place = have_moments && host && !t->opt.dp && !t->opt.ep;
    float *mo = moments_in_place ? t->opt.m : NULL, *vo = moments_in_place ? t->opt.v : NULL;
    if (have_moments && root && !moments_in_place)
        mo = cispo_malloc(n * sizeof(float)), vo = cispo_malloc(n * sizeof(float));
    int rc = have_moments && !moments_in_place ? optim_gather_moments(&t->opt, mo, vo, 0) : 0;
    // the master: the model's (on the CPU rank 0 writes it in place), or the optimizer's shards met on rank 0
    const int in_place = host && t->m->params;
    float *p = in_place ? t->m->params : root ? cispo_malloc(n * sizeof(float)) : NULL;
    if (!rc && !in_place) {
        if (t->opt.keeps_master) rc = optim_gather_params(&t->opt, NULL, p, 0);  // a collective
        else if (root) train_download(t, p, t->m->params, n);
    }
    if (!rc && root) {
        char *extra = run_state_json(t);
        uint64_t rng[4] = {t->sft_data.epoch, t->sft_data.cursor, t->rl_data.epoch, t->rl_data.cursor};
        rc = checkpoint_save(path, &t->mcfg, &t->m->table, p, mo, vo, t->sft_done + t->rl_done, rng, 4, extra);
        cJSON_free(extra);
    }
    if (!in_place) free(p);
    if (!moments_in_place) free(mo), free(vo);
    if (dw->world > 1) {  // rank 0's write fails every rank
        double failed = rc != 0;
        if (dist_allreduce_max_f64(dw, &failed, 1)) return -1;
        if (failed > 0 && !rc) rc = cispo_fail("rank 0 could not write the checkpoint %s", path ? path : "");
    }
    return rc;
}
