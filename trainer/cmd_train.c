// trainer/cmd_train.c — `cispo train CONFIG.yaml [key=value ...]`: an SFT warm start and RL run as the
// config says (trainer/run_config.c lists every key; `cispo train --keys` prints them). Runs under
// mpirun data-parallel (command_table.c marks it CMD_MPI; main.c starts MPI).
// defines: cmd_train
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "trainer/commands.h"
#include "trainer/run_config.h"
#include "trainer/run_dir.h"
#include "trainer/train.h"

static const keyconf_cli_t train_cli = {
    "cispo train",
    "cispo train [CONFIG.yaml] [key=value | --key value ...]",
    "  Runs SFT warm-start updates (sft_steps) and RL steps (steps) with the policy loss of key 'loss'\n"
    "  (cispo, grpo, dapo, gspo). Options override the config's keys. Writes the run directory (key 'out'):\n"
    "  config.yaml, metrics.jsonl, sft_metrics.jsonl, tb/ (TensorBoard), samples.h5, ckpt-<step>.h5,\n"
    "  report.html. Resume with resume=auto (or resume=PATH.h5). `cispo train --keys` prints every key as YAML.",
    run_config_keys, 0, 1};

int cmd_train(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "--keys")) {
        run_config_t c;
        run_config_load(&c, NULL, NULL, 0);
        keyconf_dump(stdout, &c, run_config_keys, run_config_n_keys);
        return 0;
    }
    keyconf_cli_t cli = train_cli;
    cli.n_keys = run_config_n_keys;
    run_config_t c;
    const char *yaml = NULL;
    int rc = run_config_load_cli(&c, &cli, argc, argv, NULL, &yaml, NULL);
    if (rc) {
        if (rc < 0) fprintf(stderr, "cispo train: %s\n", cispo_last_error());
        return rc < 0 ? 2 : 0;
    }
    run_dir_set_command(argc, argv);
    if (train_run(&c, yaml, NULL, NULL)) {
        fprintf(stderr, "cispo train: %s\n", cispo_last_error());
        return run_stop_requested() ? 128 + run_stop_requested() : 1;  // 130 SIGINT, 143 SIGTERM, as the shell reports them
    }
    return 0;
}
