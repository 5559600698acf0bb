// trainer/cmd_demo.c — `cispo demo [key=value ...]`: the embedded demo (scripts/demo.sh). Runs
// configs/demo.yaml from the source tree (or the install's share/cispo), writing runs/demo under the
// current directory (each demo run replaces the last one there): an SFT warm start of the tiny model on the synthetic
// arithmetic task, then CISPO RL, and prints held-out accuracy before and after RL. key=value
// arguments override the config (loss=grpo and loss=dapo run the baselines).
// defines: cmd_demo
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "rl/loss.h"
#include "trainer/commands.h"
#include "trainer/run_config.h"
#include "trainer/run_dir.h"
#include "trainer/train.h"

static int has_demo(const char *dir) {
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/configs/demo.yaml", dir);
    return access(p, R_OK) == 0;
}

// The source tree (or an install's share/cispo): $CISPO_SRC, else up to three levels above the binary
// (build/cispo, or PREFIX/bin/cispo with PREFIX/share/cispo), else the current directory.
static int find_root(char *root, size_t cap) {
    const char *env = getenv("CISPO_SRC");
    if (env && has_demo(env)) return snprintf(root, cap, "%s", env), 0;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            if (has_demo(exe)) return snprintf(root, cap, "%s", exe), 0;
            char share[PATH_MAX];
            snprintf(share, sizeof share, "%.4000s/share/cispo", exe);
            if (has_demo(share)) return snprintf(root, cap, "%s", share), 0;
        }
    }
    if (has_demo(".")) return snprintf(root, cap, "."), 0;
    return cispo_fail("configs/demo.yaml not found (set CISPO_SRC to the source tree)");
}

static const keyconf_cli_t demo_cli = {
    "cispo demo",
    "cispo demo [key=value | --key value ...]",
    "  SFT warm start + CISPO RL of the tiny model on synthetic arithmetic (configs/demo.yaml), on the\n"
    "  CPU; prints held-out accuracy before and after RL. loss=grpo or loss=dapo runs a baseline. The\n"
    "  options override configs/demo.yaml; the keys are those of `cispo train`.",
    run_config_keys, 0, 0};

// A relative path the demo config names (model, tokenizer) is a path in the source tree.
static void under_root(char *path, size_t cap, const char *root) {
    if (!path[0] || path[0] == '/' || !strcmp(path, "arithmetic")) return;
    char tmp[PATH_MAX * 2];
    snprintf(tmp, sizeof tmp, "%s/%s", root, path);
    snprintf(path, cap, "%.*s", (int)cap - 1, tmp);
}

int cmd_demo(int argc, char **argv) {
    double t0 = cispo_now();
    char root[PATH_MAX], yaml[PATH_MAX + 32];
    if (find_root(root, sizeof root)) {
        fprintf(stderr, "cispo demo: %s\n", cispo_last_error());
        return 1;
    }
    char abs_root[PATH_MAX];
    if (realpath(root, abs_root)) snprintf(root, sizeof root, "%s", abs_root);
    snprintf(yaml, sizeof yaml, "%s/configs/demo.yaml", root);
    keyconf_cli_t cli = demo_cli;
    cli.n_keys = run_config_n_keys;
    run_config_t c;
    unsigned char *given = cispo_calloc((size_t)run_config_n_keys, 1);
    int rc = run_config_load_cli(&c, &cli, argc, argv, yaml, NULL, given);
#define GIVEN(k) given[keyconf_find(run_config_keys, run_config_n_keys, k) - run_config_keys]
    int out_given = GIVEN("out"), model_given = GIVEN("model"), tok_given = GIVEN("tokenizer"),
        ow_given = GIVEN("overwrite");
#undef GIVEN
    free(given);
    if (rc) {
        if (rc < 0) fprintf(stderr, "cispo demo: %s\n", cispo_last_error());
        return rc < 0 ? 2 : 0;
    }
    // the config's files come from the source tree; the run directory goes under the current directory
    if (!model_given) under_root(c.model, sizeof c.model, root);
    if (!tok_given) under_root(c.tokenizer, sizeof c.tokenizer, root);
    if (!out_given && c.loss != LOSS_CISPO) snprintf(c.out, sizeof c.out, "runs/demo-%s", loss_kind_name(c.loss));
    if (!ow_given && !c.resume[0]) c.overwrite = 1;  // the demo is re-run as it is: each run replaces the last
    char cwd[PATH_MAX], out_dir[2 * PATH_MAX + 2];
    if (c.out[0] == '/' || !getcwd(cwd, sizeof cwd)) snprintf(out_dir, sizeof out_dir, "%s", c.out);
    else snprintf(out_dir, sizeof out_dir, "%s/%s", cwd, c.out);
    printf("cispo demo: tiny model (%s), synthetic arithmetic, %d SFT updates then %d %s RL steps; run directory "
           "%s\n", c.model, c.sft_steps, c.steps, loss_kind_name(c.loss), out_dir);
    fflush(stdout);
    double before = 0, after = 0;
    if (train_run(&c, yaml, &before, &after)) {
        fprintf(stderr, "cispo demo: %s\n", cispo_last_error());
        return run_stop_requested() ? 128 + run_stop_requested() : 1;
    }
    double wall = cispo_now() - t0;
    printf("\n== cispo demo (%s) ==\n", loss_kind_name(c.loss));
    printf("held-out accuracy before RL (after SFT): %5.1f%%\n", 100 * before);
    printf("held-out accuracy after RL:              %5.1f%%  (%+.1f points)\n", 100 * after, 100 * (after - before));
    printf("wall time: %.0f s; curves: %s/report.html\n", wall, out_dir);
    return 0;
}
