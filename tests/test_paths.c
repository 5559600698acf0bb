// tests/test_paths.c — where the files a command names are found (trainer/paths.h): a path inside a
// config file is relative to the config file, one on the command line to the working directory, a bare
// word naming no file (arithmetic, auto, tiny) stays a name; `cispo train /abs/configs/demo.yaml` and
// `cispo eval` run from another directory; `model=tiny` is the preset for every command that takes a
// model (train, eval, demo, generate, logprobs, convert, cost), found beside the binary without CISPO_SRC.
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testshell.h"
#include "tests/testutil.h"
#include "trainer/paths.h"
#include "trainer/run_config.h"

static char out_buf[1 << 20];
static int run(const char *cmd) { return test_run_shell(cmd, out_buf, sizeof out_buf); }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f) fputs(text, f), fclose(f);
}

// the small run every command line here shares (seconds on one core)
static const char *small = "sft_steps=2 sft_batch=4 steps=1 prompts_per_step=2 group_size=2 minibatches=1 "
                           "max_new_tokens=8 eval_size=4 train_size=50 reward_workers=0 report=false";

int main(void) {
    const char *bin = getenv("CISPO_BIN");
    char src[PATH_MAX];
    if (!test_check(bin && getcwd(src, sizeof src), "CISPO_BIN set (run through ctest)")) return test_finish("test_paths");
    char dir[] = "/tmp/cispo_test_paths_XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_paths");
    char p[PATH_MAX * 2], q[PATH_MAX * 2], cmd[16384], exp[PATH_MAX * 2];

    // ---- paths_resolve ----
    snprintf(p, sizeof p, "%s/cfg", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/cfg/data.jsonl", dir);
    write_file(p, "{}\n");
    snprintf(p, sizeof p, "%s/cfg/plain", dir);
    write_file(p, "x\n");
    snprintf(q, sizeof q, "%s/cfg", dir);
    char r[PATH_MAX];
    test_check(!paths_resolve("/abs/x.h5", q, r, sizeof r) && !strcmp(r, "/abs/x.h5"), "absolute kept: %s", r);
    test_check(!paths_resolve("", q, r, sizeof r) && !strcmp(r, ""), "empty kept");
    snprintf(exp, sizeof exp, "%s/cfg/data.jsonl", dir);
    test_check(!paths_resolve("data.jsonl", q, r, sizeof r) && !strcmp(r, exp), "relative joined: %s", r);
    test_check(!paths_resolve("./data.jsonl", q, r, sizeof r) && !strcmp(r, exp), "./ joined: %s", r);
    snprintf(exp, sizeof exp, "%s/cfg/missing/x.jsonl", dir);
    test_check(!paths_resolve("missing/x.jsonl", q, r, sizeof r) && !strcmp(r, exp),
               "a missing file is still the config's (the error names the absolute path): %s", r);
    test_check(!paths_resolve("arithmetic", q, r, sizeof r) && !strcmp(r, "arithmetic"), "a built-in name stays: %s", r);
    test_check(!paths_resolve("tiny", q, r, sizeof r) && !strcmp(r, "tiny"), "a preset name stays: %s", r);
    snprintf(exp, sizeof exp, "%s/cfg/plain", dir);
    test_check(!paths_resolve("plain", q, r, sizeof r) && !strcmp(r, exp), "a bare word naming a file is the file: %s", r);
    char small_cap[8];
    test_check(paths_resolve("data.jsonl", q, small_cap, sizeof small_cap) != 0, "too long for the buffer: an error");

    // ---- a config's paths are relative to it, the command line's to the working directory ----
    snprintf(p, sizeof p, "%s/cfg/run.yaml", dir);
    write_file(p, "model: ../models/m.yaml\ntokenizer: tok.json\ntrain_data: arithmetic\neval_data: data.jsonl\n"
                  "ref_model: tiny\nresume: auto\nout: runs/x\n");
    run_config_t c;
    char override[PATH_MAX + 32];
    snprintf(override, sizeof override, "tokenizer=rel/tok.json");
    char *ov[] = {override};
    test_check(run_config_load(&c, p, ov, 1) == 0, "config with relative paths loads: %s", cispo_last_error());
    snprintf(exp, sizeof exp, "%s/models/m.yaml", dir);
    test_check(!strcmp(c.model, exp), "model relative to the config: %s", c.model);
    snprintf(exp, sizeof exp, "%s/cfg/data.jsonl", dir);
    test_check(!strcmp(c.eval_data, exp), "eval_data relative to the config: %s", c.eval_data);
    snprintf(exp, sizeof exp, "%s/rel/tok.json", src);
    test_check(!strcmp(c.tokenizer, exp), "a command-line path is relative to the working directory: %s", c.tokenizer);
    test_check(!strcmp(c.train_data, "arithmetic") && !strcmp(c.ref_model, "tiny") && !strcmp(c.resume, "auto"),
               "names stay names: %s %s %s", c.train_data, c.ref_model, c.resume);
    test_check(!strcmp(c.out, "runs/x"), "out stays relative to where the run starts: %s", c.out);

    // ---- cispo train / eval from another directory with an absolute config path ----
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' train '%s/configs/demo.yaml' out=run %s", dir, bin, src, small);
    int rc = run(cmd);
    test_check(rc == 0, "train /abs/configs/demo.yaml from another directory: exit %d\n%s", rc, out_buf);
    snprintf(p, sizeof p, "%s/run/ckpt-000003.h5", dir);
    test_check(access(p, R_OK) == 0, "the run directory is under the working directory (%s)", p);
    snprintf(p, sizeof p, "%s/run/config.yaml", dir);
    char *conf = cispo_read_file(p, NULL);
    snprintf(exp, sizeof exp, "model: \"%s/configs/models/tiny.yaml\"", src);
    test_check(conf && strstr(conf, exp), "config.yaml records absolute paths (%s)", exp);
    free(conf);
    snprintf(p, sizeof p, "%s/run/runs.jsonl", dir);
    char *launch = cispo_read_file(p, NULL);
    snprintf(exp, sizeof exp, "\"config\":\"%s/configs/demo.yaml\"", src);
    test_check(launch && strstr(launch, "\"overrides\":\"out=run sft_steps=2 ") && strstr(launch, exp) &&
                   strstr(launch, "\"command\":\"cispo train ") && strstr(launch, "\"host\":"),
               "runs.jsonl records the launch: command, overrides, config: %s", launch ? launch : "(none)");
    free(launch);
    snprintf(cmd, sizeof cmd, "cd / && '%s' train '%s/run/config.yaml' out='%s/run2' %s", bin, dir, dir, small);
    rc = run(cmd);
    test_check(rc == 0, "the recorded config runs from anywhere: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' eval '%s/configs/demo.yaml' model=run/ckpt-000003.h5 eval_size=4", dir, bin,
             src);
    rc = run(cmd);
    test_check(rc == 0 && strstr(out_buf, "\"accuracy\""), "eval /abs/configs/demo.yaml with a cwd-relative model: exit %d\n%s",
               rc, out_buf);
    // a copy of the demo config elsewhere names its files relative to itself
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/proj/conf' && cp -r '%s/configs/models' '%s/configs/tokenizers' '%s/proj/conf/' && "
             "sed -e 's#^model: .*#model: models/tiny.yaml#' '%s/configs/demo.yaml' > '%s/proj/conf/demo.yaml' && "
             "cd / && '%s' train '%s/proj/conf/demo.yaml' out='%s/run3' %s", dir, src, src, dir, src, dir, bin, dir, dir, small);
    rc = run(cmd);
    test_check(rc == 0, "a config in another tree resolves its own files: exit %d\n%s", rc, out_buf);
    snprintf(p, sizeof p, "%s/proj/conf/bad.yaml", dir);
    write_file(p, "model: models/tiny.yaml\ntokenizer: nowhere/tokenizer.json\n");
    snprintf(cmd, sizeof cmd, "cd / && '%s' train '%s' out='%s/run4' %s", bin, p, dir, small);
    snprintf(exp, sizeof exp, "%s/proj/conf/nowhere/tokenizer.json", dir);
    rc = run(cmd);
    test_check(rc != 0 && strstr(out_buf, exp), "a missing file is named by its path beside the config: exit %d\n%s", rc,
               out_buf);

    // ---- model=tiny for every command, found beside the binary (no CISPO_SRC) ----
    const char *env = "env -u CISPO_SRC";
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' train model=tiny tokenizer='%s/configs/tokenizers/demo/tokenizer.json' "
             "out=run5 %s", dir, env, bin, src, small);
    rc = run(cmd);
    test_check(rc == 0, "train model=tiny: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' eval '%s/configs/demo.yaml' model=tiny", dir, env, bin, src);
    rc = run(cmd);
    test_check(rc == 2 && strstr(out_buf, "tiny.yaml") && strstr(out_buf, "random"),
               "eval model=tiny: the preset is recognised (and refused: random weights): exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' demo model=tiny out=demo-run %s", dir, env, bin, small);
    rc = run(cmd);
    test_check(rc == 0 && strstr(out_buf, "held-out accuracy after RL"), "demo model=tiny: exit %d\n%s", rc,
               out_buf);
    snprintf(p, sizeof p, "%s/toks.txt", dir);
    write_file(p, "5 6 7 8\n");
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' generate --model tiny --prompt-tokens toks.txt --max-new 3 --greedy --no-eos",
             dir, env, bin);
    rc = run(cmd);
    int a, b2, c3;
    test_check(rc == 0 && sscanf(out_buf, "%d %d %d", &a, &b2, &c3) == 3, "generate --model tiny: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' logprobs --model tiny --tokens toks.txt", dir, env, bin);
    rc = run(cmd);
    double l1 = 0, l2 = 0, l3 = 0;
    test_check(rc == 0 && sscanf(out_buf, "%lf %lf %lf", &l1, &l2, &l3) == 3 && l1 < 0 && l3 < 0,
               "logprobs --model tiny: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' score --model tiny --tokens toks.txt", dir, env, bin);
    test_check(run(cmd) == 0, "score --model tiny");
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' convert tiny tiny.h5 && %s '%s' logprobs --model tiny.h5 --tokens toks.txt",
             dir, env, bin, env, bin);
    rc = run(cmd);
    double m1 = 1, m2 = 1, m3 = 1;
    const char *nl = strstr(out_buf, "parameters\n");
    test_check(rc == 0 && nl && sscanf(nl + 11, "%lf %lf %lf", &m1, &m2, &m3) == 3 && m1 == l1 && m3 == l3,
               "convert tiny: the checkpoint is the preset's initialisation (same log-probs): exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' cost --model tiny", dir, env, bin);
    rc = run(cmd);
    test_check(rc == 0 && strstr(out_buf, "tiny.yaml"), "cost --model tiny: exit %d\n%s", rc, out_buf);
    snprintf(cmd, sizeof cmd, "cd '%s' && %s '%s' train model=tinyy out=run6 %s", dir, env, bin, small);
    rc = run(cmd);
    test_check(rc != 0 && strstr(out_buf, "no such file, directory or preset"), "a misspelt preset is named: exit %d\n%s",
               rc, out_buf);

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {
    }
    return test_finish("test_paths");
}
