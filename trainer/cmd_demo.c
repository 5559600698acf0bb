// trainer/cmd_demo.c — `cispo demo [key=value ...]`: the embedded demo (scripts/demo.sh). Runs
// configs/demo.yaml from the source tree (or the install's share/cispo; trainer/paths.h finds it, and
// the paths inside it are relative to it), writing runs/demo under the
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
#include "trainer/paths.h"
#include "trainer/run_config.h"
#include "trainer/run_dir.h"
#include "trainer/train.h"

static const keyconf_cli_t demo_cli = {
    "cispo demo",
    "cispo demo [key=value | --key value ...]",
    "  SFT warm start + CISPO RL of the tiny model on synthetic arithmetic (configs/demo.yaml), on the\n"
    "  CPU; prints held-out accuracy before and after RL. loss=grpo or loss=dapo runs a baseline. The\n"
    "  options override configs/demo.yaml; the keys are those of `cispo train`.",
    run_config_keys, 0, 0};

int cmd_demo(int argc, char **argv) {
    double t0 = cispo_now();
    char root[PATH_MAX], yaml[PATH_MAX + 32];
    if (paths_find_root(root, sizeof root)) {
        fprintf(stderr, "cispo demo: %s\n", cispo_last_error());
        return 1;
    }
    snprintf(yaml, sizeof yaml, "%s/configs/demo.yaml", root);
    keyconf_cli_t cli = demo_cli;
    cli.n_keys = run_config_n_keys;
    run_config_t c;
    unsigned char *given = cispo_calloc((size_t)run_config_n_keys, 1);
    int rc = run_config_load_cli(&c, &cli, argc, argv, yaml, NULL, given);
#define GIVEN(k) given[keyconf_find(run_config_keys, run_config_n_keys, k) - run_config_keys]
    int out_given = GIVEN("out"), ow_given = GIVEN("overwrite");
#undef GIVEN
    free(given);
    if (rc) {
        if (rc < 0) fprintf(stderr, "cispo demo: %s\n", cispo_last_error());
        return rc < 0 ? 2 : 0;
    }
    // the config's files are found beside it (in the source tree); the run directory goes under the current one
    if (!out_given && c.loss != LOSS_CISPO) snprintf(c.out, sizeof c.out, "runs/demo-%s", loss_kind_name(c.loss));
    if (!ow_given && !c.resume[0]) c.overwrite = 1;  // the demo is re-run as it is: each run replaces the last
    char cwd[PATH_MAX], out_dir[2 * PATH_MAX + 2];
    if (c.out[0] == '/' || !getcwd(cwd, sizeof cwd)) snprintf(out_dir, sizeof out_dir, "%s", c.out);
    else snprintf(out_dir, sizeof out_dir, "%s/%s", cwd, c.out);
    printf("cispo demo: tiny model (%s), synthetic arithmetic, %d SFT updates then %d %s RL steps; run directory "
           "%s\n", c.model, c.sft_steps, c.steps, loss_kind_name(c.loss), out_dir);
    fflush(stdout);
    double before = 0, after = 0;
    run_dir_set_command(argc, argv);
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
