// trainer/cmd_train.c — `cispo train CONFIG.yaml [key=value ...]`: an SFT warm start and RL run as the
// config says (trainer/run_config.c lists every key; `cispo train --keys` prints them).
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "trainer/commands.h"
#include "trainer/dist.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cispo train [CONFIG.yaml] [key=value ...]\n"
            "  Runs SFT warm-start updates (sft_steps) and RL steps (steps) with the policy loss of key 'loss'\n"
            "  (cispo, grpo, dapo, gspo). Writes the run directory (key 'out'): config.yaml, metrics.jsonl,\n"
            "  sft_metrics.jsonl, tb/ (TensorBoard), samples.h5, ckpt-<step>.h5, report.html.\n"
            "  Resume with resume=auto (or resume=PATH.h5). `cispo train --keys` lists every key.\n");
}

static int train_main(int argc, char **argv) {
    const char *yaml = NULL;
    int first = 1;
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) return usage(stdout), 0;
    if (argc >= 2 && !strcmp(argv[1], "--keys")) {
        run_config_t c;
        run_config_load(&c, NULL, NULL, 0);
        keyconf_dump(stdout, &c, run_config_keys, run_config_n_keys);
        return 0;
    }
    if (argc >= 2 && !strchr(argv[1], '=')) yaml = argv[1], first = 2;
    run_config_t c;
    if (run_config_load(&c, yaml, argv + first, argc - first)) {
        fprintf(stderr, "cispo train: %s\n", cispo_last_error());
        return 2;
    }
    if (train_run(&c, yaml, NULL, NULL)) {
        fprintf(stderr, "cispo train: %s\n", cispo_last_error());
        return 1;
    }
    return 0;
}

// Under mpirun every rank runs this command on its share of the work (train_run prints on rank 0 only); a plain start
// is a world of one without MPI.
int cmd_train(int argc, char **argv) {
    if (dist_start(NULL, NULL, 0)) {
        fprintf(stderr, "cispo train: %s\n", cispo_last_error());
        return 1;
    }
    int rc = train_main(argc, argv);
    dist_finalize(dist_world());
    return rc;
}
