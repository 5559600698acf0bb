// trainer/cmd_eval.c — `cispo eval [CONFIG.yaml] [key=value ...]`: held-out accuracy of a model
// (key 'model': an HF directory, an .h5 checkpoint such as a run's ckpt-<step>.h5) on the held-out
// set the run config names (eval_data, eval_size, eval_greedy, max_new_tokens, ...). Runs under
// mpirun (CMD_MPI in command_table.c): each rank evaluates its share, rank 0 prints.
// defines: cmd_eval
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "trainer/commands.h"
#include "trainer/paths.h"
#include "trainer/run_config.h"
#include "trainer/train.h"

static const keyconf_cli_t eval_cli = {
    "cispo eval",
    "cispo eval [CONFIG.yaml] [key=value | --key value ...]",
    "  Held-out accuracy of key 'model' (HF directory or .h5 checkpoint; a preset is refused) on eval_data (a JSONL file,\n"
    "  or arithmetic: the held-out split of the synthetic task), greedy unless eval_greedy=false.\n"
    "  Prints one JSON line: {\"accuracy\", \"n\", \"mean_len\", \"model\"}. The keys are those of `cispo train`.",
    run_config_keys, 0, 1};

int cmd_eval(int argc, char **argv) {
    keyconf_cli_t cli = eval_cli;
    cli.n_keys = run_config_n_keys;
    run_config_t c;
    int rc = run_config_load_cli(&c, &cli, argc, argv, NULL, NULL, NULL);
    if (rc) {
        if (rc < 0) fprintf(stderr, "cispo eval: %s\n", cispo_last_error());
        return rc < 0 ? 2 : 0;
    }
    char spec[RUN_PATH_MAX];
    paths_model_spec(c.model, spec, sizeof spec);  // tiny -> configs/models/tiny.yaml, as every command
    if (paths_is_preset(spec)) {  // a preset or config.json initialises weights at random: nothing trained to evaluate
        fprintf(stderr, "cispo eval: model %s is a model config, so its weights would be random: name trained weights "
                        "with model=RUN_DIR/ckpt-<step>.h5 (or ckpt-best.h5) or an HF model directory\n", spec);
        return 2;
    }
    c.train_size = c.train_size ? c.train_size : 1;  // only the held-out set is used
    // nothing trains: no demonstrations are asked of the records, and the memory plan counts what an evaluation
    // holds (no moments, no gradients touched on the CPU)
    c.sft_steps = c.steps = 0;
    train_t t;
    double acc = 0, len = 0;
    rc = train_open(&t, &c);
    if (!rc) rc = train_evaluate(&t, &acc, &len);
    if (!rc) printf("{\"accuracy\": %.17g, \"n\": %d, \"mean_len\": %.17g, \"model\": \"%s\"}\n", acc, t.eval.n, len, c.model);
    else fprintf(stderr, "cispo eval: %s\n", cispo_last_error());
    train_close(&t);
    return rc ? 1 : 0;
}
