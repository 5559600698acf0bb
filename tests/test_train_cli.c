// tests/test_train_cli.c — `cispo train` end to end on a few steps of the tiny model: key checking
// (unknown key with a suggestion, type and range errors naming file:line), the run directory
// (resolved config that runs again, metrics.jsonl, TensorBoard events read back with the `tensorboard`
// package's reader, rollout samples in HDF5, checkpoints, report.html), the console line, and
// `cispo eval` of the final checkpoint reproducing the run's last held-out accuracy exactly; loud
// failures: a verifier failing during the run stops it past max_verifier_failed, SFT refuses records
// without a demonstration; the memory plan (printed on the CPU, counting the launcher's ranks on the host; a
// plan past the host's memory, or MiniMax-M1's weights, refused by size), dry_run, and eval's stdout being its
// JSON line alone.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testshell.h"
#include "tests/testutil.h"
#include "trainer/samples.h"

static char out_buf[1 << 20];

// Runs a shell command; stdout + stderr into out_buf. Returns the exit status.
static int run(const char *cmd) { return test_run_shell(cmd, out_buf, sizeof out_buf); }

static const char *args =
    "model=configs/models/tiny.yaml tokenizer=configs/tokenizers/demo/tokenizer.json train_data=arithmetic "
    "eval_data=arithmetic train_size=100 eval_size=10 sft_steps=3 sft_batch=8 steps=3 prompts_per_step=2 "
    "group_size=4 minibatches=2 max_new_tokens=12 save_every=2 keep_checkpoints=2 reward_workers=1 seed=3";

int main(void) {
    const char *bin = getenv("CISPO_BIN"), *py = getenv("CISPO_PYTHON");
    if (!test_check(bin && py, "CISPO_BIN and CISPO_PYTHON set (run through scripts/test.sh)")) return test_finish("test_train_cli");
    char dir[] = "/tmp/cispo_test_train_cli_XXXXXX";  // of its own: other builds may run this test at once
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_train_cli");
    char cmd[8192], path[512];

    // ---- keys ----
    snprintf(cmd, sizeof cmd, "'%s' train --keys", bin);
    test_check(run(cmd) == 0 && strstr(out_buf, "eps_high:") && strstr(out_buf, "beta2: 0.94999"),
               "--keys lists every key with its default");
    snprintf(cmd, sizeof cmd, "'%s' train %s warmpu=3", bin, args);
    test_check(run(cmd) == 2 && strstr(out_buf, "unknown key 'warmpu'") && strstr(out_buf, "warmup"),
               "unknown key on the command line names the near one: %s", out_buf);
    snprintf(path, sizeof path, "%s/bad.yaml", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "steps: 3\ngroup_size: 4\nclip_eps_hgh: 0.3\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' train %s", bin, path);
    test_check(run(cmd) == 2 && strstr(out_buf, "bad.yaml:3") && strstr(out_buf, "clip_eps_hgh"),
               "unknown YAML key names file:line: %s", out_buf);
    f = fopen(path, "w");
    fprintf(f, "steps: ten\n");
    fclose(f);
    test_check(run(cmd) == 2 && strstr(out_buf, "bad.yaml:1") && strstr(out_buf, "not an integer"), "type error: %s", out_buf);
    snprintf(cmd, sizeof cmd, "'%s' train %s temperature=0", bin, args);
    test_check(run(cmd) == 2 && strstr(out_buf, "out of range"), "range error: %s", out_buf);

    // ---- a short run ----
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/run", bin, args, dir);
    int rc = run(cmd);
    test_check(rc == 0, "short run exits 0:\n%s", out_buf);
    const char *console[] = {"step    1/3 | reward", "acc", "len", "clip", "tok/s", "ETA", "held-out accuracy before RL"};
    for (size_t i = 0; i < sizeof console / sizeof *console; i++)
        test_check(strstr(out_buf, console[i]) != NULL, "console shows '%s'", console[i]);
    // resolved config: every key, and it runs again as a config file
    snprintf(path, sizeof path, "%s/run/config.yaml", dir);
    char *conf = cispo_read_file(path, NULL);
    test_check(conf && strstr(conf, "group_size: 4") && strstr(conf, "loss: cispo") && strstr(conf, "adam_eps: 1.0000000000000001e-15"),
               "config.yaml holds the resolved keys");
    free(conf);
    snprintf(cmd, sizeof cmd, "'%s' train %s/run/config.yaml out=%s/run2 steps=1 sft_steps=1 report=false", bin, dir, dir);
    test_check(run(cmd) == 0, "the resolved config runs: %s", out_buf);
    // metrics.jsonl: step 0 (held-out before RL) and steps 1..3
    snprintf(path, sizeof path, "%s/run/metrics.jsonl", dir);
    char *m = cispo_read_file(path, NULL);
    int lines = 0;
    double last_heldout = -1;
    for (char *p = m, *nl; p && *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        cJSON *o = cJSON_Parse(p);
        const cJSON *h = cJSON_GetObjectItem(o, "heldout_accuracy");
        if (h) last_heldout = h->valuedouble;
        test_check(o && cJSON_GetObjectItem(o, "step")->valueint == lines, "metrics line %d has step %d", lines, lines);
        cJSON_Delete(o);
        lines++;
    }
    free(m);
    test_check(lines == 4, "metrics.jsonl has 4 lines (%d)", lines);
    // TensorBoard events read back with tensorboard's own reader
    snprintf(cmd, sizeof cmd, "'%s' tests/tblog_read.py \"$(ls %s/run/tb/events.out.tfevents.* | head -1)\"", py, dir);
    test_check(run(cmd) == 0, "tensorboard reads the events: %s", out_buf);
    test_check(strstr(out_buf, "rl/reward_mean 1 ") && strstr(out_buf, "rl/reward_mean 3 ") && strstr(out_buf, "rl/clip_frac 2 ") &&
                   strstr(out_buf, "sft/loss 3 ") && strstr(out_buf, "rl/heldout_accuracy 0 "),
               "events hold the RL and SFT scalars");
    // rollout samples
    snprintf(path, sizeof path, "%s/run/samples.h5", dir);
    samples_writer_t *w = samples_open(path, 1);
    test_check(w && samples_count(w) == 3 * 2 * 4, "samples.h5 has 24 rows (%ld)", w ? samples_count(w) : -1L);
    if (w) samples_close(w);
    // checkpoints (every 2 steps, kept 3, and the last) and the report
    snprintf(path, sizeof path, "%s/run/ckpt-000006.h5", dir);
    test_check(access(path, R_OK) == 0, "final checkpoint ckpt-000006.h5");
    snprintf(path, sizeof path, "%s/run/ckpt-000002.h5", dir);
    test_check(access(path, R_OK) != 0, "old checkpoints beyond keep_checkpoints removed");
    snprintf(path, sizeof path, "%s/run/report.html", dir);
    char *rep = cispo_read_file(path, NULL);
    test_check(rep && strstr(rep, "reward_mean") && strstr(rep, "<svg"), "report.html with plots");
    free(rep);

    // ---- cispo eval of the last checkpoint = the run's last held-out accuracy, exactly ----
    snprintf(cmd, sizeof cmd, "'%s' eval %s model=%s/run/ckpt-000006.h5", bin, args, dir);
    rc = run(cmd);
    cJSON *o = cJSON_Parse(out_buf);  // its output is the JSON line alone (stderr empty), for a pipe to read
    const cJSON *acc = o ? cJSON_GetObjectItem(o, "accuracy") : NULL;
    test_check(rc == 0 && acc && acc->valuedouble == last_heldout && cJSON_GetObjectItem(o, "n")->valueint == 10,
               "cispo eval reproduces the held-out accuracy %.3f: %s", last_heldout, out_buf);
    cJSON_Delete(o);
    snprintf(cmd, sizeof cmd, "'%s' generate --model %s/run/ckpt-000006.h5 --tokenizer configs/tokenizers/demo/tokenizer.json "
             "--prompt 'Compute 1+2.' --greedy --max-new 8", bin, dir);
    test_check(run(cmd) == 0, "generate from a run checkpoint with a text prompt: %s", out_buf);

    // ---- the baselines and recomputed old log-probs run through the same loop ----
    // dapo filters on the shaped reward here: after one SFT update every answer is wrong, so DAPO's accuracy
    // rule would keep no group and train nothing
    const char *variants[] = {"loss=grpo", "loss=dapo dynamic_sampling_metric=reward", "loss=gspo",
                              "old_logprobs=recompute eq7_mask=true",
                              "adv=rloo top_p=0.9 top_k=50 rep_n=4 rep_p=0.5"};
    for (int v = 0; v < 5; v++) {
        snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/v%d steps=2 sft_steps=1 report=false %s", bin, args, dir, v,
                 variants[v]);
        int ok = run(cmd) == 0;
        snprintf(path, sizeof path, "%s/v%d/metrics.jsonl", dir, v);
        char *t = ok ? cispo_read_file(path, NULL) : NULL;
        char *l1 = t ? strstr(t, "{\"step\": 1,") : NULL;
        test_check(l1 && strstr(l1, "\"clip_frac\"") && strstr(l1, "\"agree_pearson\""), "%s runs: %s", variants[v],
                   ok ? "" : out_buf);
        if (v == 1) test_check(l1 && strstr(l1, "\"rollout_rounds\""), "dapo: dynamic sampling rounds logged");
        if (v == 3 && l1) {  // recompute: the rollout's log-probs against the training forward, before any update
            char *nl = strchr(l1, '\n');
            if (nl) *nl = 0;
            cJSON *o = cJSON_Parse(l1);
            const cJSON *mx = cJSON_GetObjectItem(o, "agree_max_abs");
            test_check(mx && mx->valuedouble < 1e-4, "recompute: rollout and training log-probs agree (max %g)",
                       mx ? mx->valuedouble : -1.0);
            const cJSON *ms = cJSON_GetObjectItem(o, "agree_max_sample"), *mk = cJSON_GetObjectItem(o, "agree_max_token"),
                        *ng = cJSON_GetObjectItem(o, "samples_generated");
            test_check(ms && mk && ng && ms->valuedouble >= 0 && ms->valuedouble < ng->valuedouble && mk->valuedouble >= 0,
                       "recompute: where the largest difference is (sample %g of %g, token %g)", ms ? ms->valuedouble : -1.0,
                       ng ? ng->valuedouble : -1.0, mk ? mk->valuedouble : -1.0);
            cJSON_Delete(o);
        }
        free(t);
    }

    // bf16 gradients are a GPU run's: on the CPU (the fp32 reference) the key is refused by name, with the way out
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/gbf16 grad_dtype=bf16 sft_steps=1 steps=0", bin, args, dir);
    rc = run(cmd);
    test_check(rc == 1 && strstr(out_buf, "key 'grad_dtype'") && strstr(out_buf, "device=cuda") &&
                   strstr(out_buf, "grad_dtype=fp32"),
               "grad_dtype=bf16 on the CPU is refused by name: exit %d\n%s", rc, out_buf);

    // memory planned before anything is allocated: the plan line on the CPU; a plan past the host's memory stops
    // the run at the start with the parts and what to change, and leaves no run directory to block the next try
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/plan sft_steps=1 steps=0", bin, args, dir);
    test_check(run(cmd) == 0 && strstr(out_buf, "memory plan on the cpu: fp32 weights") &&
                   strstr(out_buf, "activations") && strstr(out_buf, "the host has") && !strstr(out_buf, "ranks on"),
               "the CPU run prints its memory plan: %s", out_buf);
    // the ranks a launcher puts on one host share its memory: the plan counts them (Open MPI's variable)
    snprintf(cmd, sizeof cmd, "env OMPI_COMM_WORLD_LOCAL_SIZE=3 '%s' train %s out=%s/plan3 sft_steps=1 steps=0", bin,
             args, dir);
    test_check(run(cmd) == 0 && strstr(out_buf, " a rank, ") && strstr(out_buf, "GiB for the 3 ranks on this host"),
               "the plan counts the launcher's ranks on this host: %s", out_buf);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/huge micro_tokens=60000000", bin, args, dir);
    rc = run(cmd);
    snprintf(path, sizeof path, "%s/huge", dir);
    test_check(rc == 1 && strstr(out_buf, "on the cpu needs about") && strstr(out_buf, "micro_tokens 60000000") &&
                   strstr(out_buf, "lower micro_tokens (about") && strstr(out_buf, "memory_check=false") &&
                   access(path, F_OK) != 0,
               "a plan past the host's memory stops the run by name, with no run directory left: exit %d\n%s", rc,
               out_buf);
    // memory_check is about the machine, not the run: a resume may change it
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/plan sft_steps=1 steps=0 resume=auto memory_check=false", bin, args,
             dir);
    rc = run(cmd);
    test_check(rc == 0 && !strstr(out_buf, "differs"), "a resume may change memory_check: exit %d\n%s", rc, out_buf);
    // dry_run: every check train_open makes, up to the memory plan, then exit 0 with the run directory untouched
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/dry dry_run=true", bin, args, dir);
    rc = run(cmd);
    snprintf(path, sizeof path, "%s/dry", dir);
    test_check(rc == 0 && strstr(out_buf, "memory plan on the cpu") && strstr(out_buf, "dry_run: ") &&
                   strstr(out_buf, "100 training and 10 held-out records") && access(path, F_OK) != 0,
               "dry_run checks and stops without a run directory: exit %d\n%s", rc, out_buf);
    // a run that trains nothing (as `cispo eval` sets up) plans no moments and no gradients on the CPU, and the
    // load's host copy of the weights beside the model's
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/dry dry_run=true sft_steps=0 steps=0", bin, args, dir);
    rc = run(cmd);
    test_check(rc == 0 && strstr(out_buf, "memory plan on the cpu") && !strstr(out_buf, "AdamW moments") &&
                   !strstr(out_buf, "gradients") && strstr(out_buf, "load copy"),
               "a run that trains nothing plans what it holds: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/dry2 dry_run=true train_data=/nonexistent.jsonl", bin, args, dir);
    rc = run(cmd);
    test_check(rc == 1 && strstr(out_buf, "/nonexistent.jsonl") && !strstr(out_buf, "dry_run: "),
               "dry_run reports bad data as a run would: exit %d\n%s", rc, out_buf);
    // a model whose state alone exceeds the host's memory (MiniMax-M1): refused by its size, not by a failed
    // allocation, in train and in the commands that only load weights
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/m1 model=configs/models/minimax-m1.yaml", bin, args, dir);
    rc = run(cmd);
    test_check(rc == 1 && strstr(out_buf, "on the cpu needs about") &&
                   strstr(out_buf, "weights, gradients and AdamW state alone") && strstr(out_buf, "device=cuda"),
               "MiniMax-M1 trained on the CPU is refused by its plan: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "'%s' generate --model configs/models/minimax-m1.yaml --prompt 'x'", bin);
    rc = run(cmd);
    test_check(rc != 0 && strstr(out_buf, "456.09 B parameters") && strstr(out_buf, "GiB in fp32") &&
                   strstr(out_buf, "cispo plan"),
               "generate from MiniMax-M1's config on the CPU: its weights are refused by size: exit %d\n%s", rc,
               out_buf);

    // ---- loud failures of the other commands ----
    snprintf(cmd, sizeof cmd, "'%s' eval %s", bin, args);
    test_check(run(cmd) == 2 && strstr(out_buf, "random"), "eval of a preset (random weights) is refused: %s", out_buf);
    snprintf(path, sizeof path, "%s/ids.txt", dir);
    f = fopen(path, "w");
    fprintf(f, "5 6 7\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' generate --model %s/run/ckpt-000006.h5 --prompt-tokens %s --greedy --max-new 4", bin,
             dir, path);
    test_check(run(cmd) == 0 && strstr(out_buf, "no end-of-sequence token"), "generate without a known EOS says so: %s",
               out_buf);
    snprintf(cmd, sizeof cmd, "'%s' generate --model %s/run/ckpt-000006.h5 --prompt-tokens %s --greedy --max-new 4 "
             "--tokenizer configs/tokenizers/demo/tokenizer.json", bin, dir, path);
    test_check(run(cmd) == 0 && !strstr(out_buf, "warning"), "generate --prompt-tokens takes EOS from --tokenizer: %s", out_buf);
    snprintf(cmd, sizeof cmd, "'%s' generate --model %s/run/ckpt-000006.h5 --prompt-tokens %s --greedy --max-new 5000 "
             "--tokenizer configs/tokenizers/demo/tokenizer.json --no-eos", bin, dir, path);
    test_check(run(cmd) == 0 && strstr(out_buf, "max_position_embeddings"), "generating past the trained positions warns");
    snprintf(cmd, sizeof cmd, "echo 999999 | '%s' tokenize --tokenizer configs/tokenizers/demo/tokenizer.json --decode", bin);
    test_check(run(cmd) != 0 && strstr(out_buf, "out of range"), "decoding an out-of-range id is an error: %s", out_buf);
    snprintf(cmd, sizeof cmd, "'%s' --version", bin);
    test_check(run(cmd) == 0 && !strncmp(out_buf, "cispo ", 6), "--version: %s", out_buf);
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' gen-data --task arith --n 10000000 --seed 1 --difficulty 1 --out %s/big.jsonl",
             bin, dir);
    test_check(run(cmd) == 1 && strstr(out_buf, "only"), "gen-data stops once the task has no new problems: %s", out_buf);
    // the documented chat-demo commands write into folders a fresh clone does not have yet
    snprintf(cmd, sizeof cmd, "'%s' gen-data --task arith --n 3 --seed 1 --chat --out %s/new/folder/chat.jsonl && wc -l < %s/new/folder/chat.jsonl",
             bin, dir, dir);
    test_check(run(cmd) == 0 && atoi(out_buf) == 3, "gen-data makes the output's missing folders: %s", out_buf);

    // a verifier that cannot run stops the run before it starts, with the key to set
    snprintf(path, sizeof path, "%s/remote.jsonl", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 8; i++) fprintf(f, "{\"prompt\": \"Say %d.\", \"verifier\": \"remote\", \"answer\": \"%d\"}\n", i, i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "env -u CISPO_REMOTE_REWARD_URL '%s' train %s out=%s/remote train_data=%s sft_steps=0", bin,
             args, dir, path);
    test_check(run(cmd) == 1 && strstr(out_buf, "start-up probe") && strstr(out_buf, "remote_reward_url"),
               "remote verifier without a URL: the run stops at the start: %s", out_buf);
    // verdicts that fail during the run (a regex verifier whose gold pattern does not compile: no start-up
    // probe catches it) stop the run once a step's failed fraction passes max_verifier_failed
    snprintf(path, sizeof path, "%s/badregex.jsonl", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 40; i++) fprintf(f, "{\"prompt\": \"Say %d.\", \"verifier\": \"regex\", \"answer\": \"(%d\"}\n", i, i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/failing train_data=%s eval_data=%s sft_steps=0 steps=3", bin, args, dir,
             path, path);
    rc = run(cmd);
    test_check(rc == 1 && strstr(out_buf, "RL step 1: 8 of 8 verdicts failed") && strstr(out_buf, "max_verifier_failed=0.5") &&
                   strstr(out_buf, "bad pattern") && strstr(out_buf, "resume=auto"),
               "failed verdicts above max_verifier_failed stop the run at step 1 with the first reason: exit %d\n%s", rc,
               out_buf);
    snprintf(path, sizeof path, "%s/failing/ckpt-000001.h5", dir);
    test_check(access(path, R_OK) != 0, "the stopped step is not checkpointed as if it had trained");
    snprintf(path, sizeof path, "%s/badregex.jsonl", dir);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/failing2 train_data=%s eval_data=%s sft_steps=0 steps=2 "
             "max_verifier_failed=1", bin, args, dir, path, path);
    rc = run(cmd);
    test_check(rc == 0 && strstr(out_buf, "step    2/2"), "max_verifier_failed=1 never stops the run: exit %d\n%s", rc,
               out_buf);
    // SFT learns from demonstrations: verl-style records with only a ground truth are refused, not trained
    // on as the bare answer
    snprintf(path, sizeof path, "%s/verl.jsonl", dir);
    f = fopen(path, "w");
    for (int i = 0; i < 40; i++)
        fprintf(f, "{\"data_source\": \"arith\", \"prompt\": [{\"role\": \"user\", \"content\": \"What is %d+%d?\"}], "
                   "\"reward_model\": {\"style\": \"rule\", \"ground_truth\": \"%d\"}}\n", i, 2 * i, 3 * i);
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/nodemo train_data=%s eval_data=%s sft_steps=3", bin, args, dir, path,
             path);
    rc = run(cmd);
    test_check(rc == 1 && strstr(out_buf, "training records") && strstr(out_buf, "have no demonstration") &&
                   strstr(out_buf, "record 1") && strstr(out_buf, "sft_steps=0"),
               "SFT refuses records without a demonstration, naming the first and the way out: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "'%s' train %s out=%s/nodemo2 train_data=%s eval_data=%s sft_steps=0 steps=1", bin, args, dir,
             path, path);
    rc = run(cmd);
    test_check(rc == 0, "the same records train with RL alone (sft_steps=0): exit %d\n%s", rc, out_buf);

    // the demo writes under the current directory, whatever directory it is started from
    snprintf(cmd, sizeof cmd, "cd %s && '%s' demo sft_steps=2 steps=1 eval_size=4 prompts_per_step=2 max_new_tokens=8", dir, bin);
    test_check(run(cmd) == 0 && strstr(out_buf, dir), "demo from another directory: %s", out_buf);
    snprintf(path, sizeof path, "%s/runs/demo/metrics.jsonl", dir);
    test_check(access(path, R_OK) == 0, "the demo's run directory is under the current directory");

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (test_failures == 0 && system(cmd)) {}
    return test_finish("test_train_cli");
}
