// trainer/cmd_eval.c — `cispo eval [CONFIG.yaml] [key=value ...]`: held-out accuracy of a model
// (key 'model': an HF directory, an .h5 checkpoint such as a run's ckpt-<step>.h5) on the held-out
// set the run config names (eval_data, eval_size, eval_greedy, max_new_tokens, ...).
// defines: cmd_eval
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "trainer/commands.h"
#include "trainer/dist.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

int cmd_eval(int argc, char **argv);

static int eval_main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: cispo eval [CONFIG.yaml] [key=value ...]\n"
               "  Held-out accuracy of key 'model' (HF directory or .h5 checkpoint) on eval_data (a JSONL file,\n"
               "  or arithmetic: the held-out split of the synthetic task), greedy unless eval_greedy=false.\n"
               "  Prints one JSON line: {\"accuracy\", \"n\", \"mean_len\", \"model\"}.\n");
        return 0;
    }
    const char *yaml = NULL;
    int first = 1;
    if (argc >= 2 && !strchr(argv[1], '=')) yaml = argv[1], first = 2;
    run_config_t c;
    if (run_config_load(&c, yaml, argv + first, argc - first)) {
        fprintf(stderr, "cispo eval: %s\n", cispo_last_error());
        return 2;
    }
    c.train_size = c.train_size ? c.train_size : 1;  // only the held-out set is used
    train_t t;
    double acc = 0, len = 0;
    int rc = train_open(&t, &c);
    if (!rc) rc = train_evaluate(&t, &acc, &len);
    if (!rc) printf("{\"accuracy\": %.17g, \"n\": %d, \"mean_len\": %.17g, \"model\": \"%s\"}\n", acc, t.eval.n, len, c.model);
    else fprintf(stderr, "cispo eval: %s\n", cispo_last_error());
    train_close(&t);
    return rc ? 1 : 0;
}

// Under mpirun every rank runs this command on its share of the work (ranks other than 0 print nothing); a plain start
// is a world of one without MPI.
int cmd_eval(int argc, char **argv) {
    if (dist_start(NULL, NULL, 1)) {
        fprintf(stderr, "cispo eval: %s\n", cispo_last_error());
        return 1;
    }
    int rc = eval_main(argc, argv);
    dist_finalize(dist_world());
    return rc;
}
