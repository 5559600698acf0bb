// trainer/commands.h — the subcommands of the `cispo` program, one function each, in its own file
// (trainer/cmd_<name>.c). Each returns the process exit status (0 done, 1 failed, 2 bad usage).
// defines: cispo_command_t, cispo_commands, cmd_* (one per subcommand)
//
// Every command parses its options with a keyconf table (trainer/keyconf.h: keyconf_parse_cli), so
// `--key value`, `--key=value` and `key=value` mean the same everywhere and `cispo <cmd> --help` lists
// the options from the table.
#ifndef CISPO_TRAINER_COMMANDS_H
#define CISPO_TRAINER_COMMANDS_H

enum cispo_command_flags {
    CMD_MPI = 1,            // main.c starts MPI when launched by mpirun/srun (dist_start) and finalises it after
    CMD_MPI_QUIET = 2,      // with CMD_MPI: ranks other than 0 send their standard output to /dev/null
    CMD_ALIAS = 4,          // another name of the command above it (not listed separately by `cispo help`)
};

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  // argv[0] is the subcommand name
    int flags;                          // enum cispo_command_flags
    const char *summary;
} cispo_command_t;

// The table lives in trainer/command_table.c; add a line there for a new subcommand.
extern const cispo_command_t cispo_commands[];

int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_gendata(int argc, char **argv);
int cmd_logprobs(int argc, char **argv);
int cmd_sandbox(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_cost(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_serve_model(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
