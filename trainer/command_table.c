// trainer/command_table.c — the table of subcommands. One line per command; its function lives in
// trainer/cmd_<name>.c and is declared in trainer/commands.h. CMD_MPI marks the commands that run
// under mpirun (main.c starts and finalises MPI around them).
#include <stddef.h>

#include "trainer/commands.h"

const cispo_command_t cispo_commands[] = {
    // {"name", cmd_name, flags, "one-line summary"},
    {"train", cmd_train, CMD_MPI, "SFT warm start + RL (CISPO, GRPO, DAPO, GSPO) from a run config (cispo train CONFIG.yaml [key=value ...])"},
    {"demo", cmd_demo, CMD_MPI | CMD_MPI_QUIET, "the CPU demo: SFT + CISPO RL of the tiny model on arithmetic, held-out accuracy before/after"},
    {"eval", cmd_eval, CMD_MPI | CMD_MPI_QUIET, "held-out accuracy of a model (cispo eval [CONFIG.yaml] model=CKPT.h5 [key=value ...])"},
    {"generate", cmd_generate, 0, "continue a prompt (cispo generate --model DIR --prompt-tokens FILE --max-new N --greedy)"},
    {"serve", cmd_serve_model, 0, "OpenAI-compatible HTTP server on the rollout engine (cispo serve --model DIR --port 8000)"},
    {"logprobs", cmd_logprobs, 0, "per-token log-probs of a token file under a model (cispo logprobs --model DIR --tokens FILE)"},
    {"score", cmd_logprobs, CMD_ALIAS, "the former name of logprobs"},
    {"convert", cmd_convert, 0, "HF model directory <-> HDF5 checkpoint (cispo convert SRC DST)"},
    {"tokenize", cmd_tokenize, 0, "encode stdin with a tokenizer.json, or decode ids (cispo tokenize --tokenizer FILE)"},
    {"gen-data", cmd_gendata, 0, "synthetic task records as JSONL (cispo gen-data --task arith --n N --seed S)"},
    {"verify", cmd_verify, 0, "judge answers with a reward verifier (cispo verify --gold G --answer A | --tsv FILE)"},
    {"sandbox", cmd_sandbox, 0, "run code in the sandbox, or serve it over HTTP (cispo sandbox run|serve|probe)"},
    {"cost", cmd_cost, 0, "FLOPs per token, and GPU-hours, days and dollars of an RL run (cispo cost --model NAME)"},
    {"plan", cmd_plan, 0, "planned parallel layout, memory per GPU, communication and step time (cispo plan --model M --gpus N --gpu h800)"},
    {NULL, NULL, 0, NULL},
};
