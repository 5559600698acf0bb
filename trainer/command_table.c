// trainer/command_table.c — the table of subcommands. One line per command; its function lives in
// trainer/cmd_<name>.c.
#include <stddef.h>

#include "trainer/commands.h"

// Declarations (keep in the same order as the table).
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_gendata(int argc, char **argv);
int cmd_logprobs(int argc, char **argv);
int cmd_sandbox(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_cost(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_eval(int argc, char **argv);

const cispo_command_t cispo_commands[] = {
    // {"name", cmd_name, "one-line summary"},
    {"convert", cmd_convert, "HF model directory <-> HDF5 checkpoint (cispo convert SRC DST)"},
    {"tokenize", cmd_tokenize, "encode stdin with a tokenizer.json, or decode ids (cispo tokenize --tokenizer FILE)"},
    {"gen-data", cmd_gendata, "synthetic task records as JSONL (cispo gen-data --task arith --n N --seed S)"},
    {"score", cmd_logprobs, "per-token log-probs of a token file under a model (cispo score --model DIR --tokens FILE)"},
    {"sandbox", cmd_sandbox, "run code in the sandbox, or serve it over HTTP (cispo sandbox run|serve|probe)"},
    {"verify", cmd_verify, "judge answers with a reward verifier (cispo verify --gold G --answer A | --tsv FILE)"},
    {"cost", cmd_cost, "FLOPs per token, and GPU-hours, days and dollars of an RL run (cispo cost --model NAME)"},
    {"train", cmd_train, "SFT warm start + RL (CISPO, GRPO, DAPO, GSPO) from a run config (cispo train CONFIG.yaml [key=value ...])"},
    {"demo", cmd_demo, "the CPU demo: SFT + CISPO RL of the tiny model on arithmetic, held-out accuracy before/after"},
    {"generate", cmd_generate, "continue a prompt (cispo generate --model DIR --prompt-tokens FILE --max-new N --greedy)"},
    {"eval", cmd_eval, "held-out accuracy of a model (cispo eval [CONFIG.yaml] model=CKPT.h5 [key=value ...])"},
    {NULL, NULL, NULL},
};
