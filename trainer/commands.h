// trainer/commands.h — the subcommands of the `cispo` program, one function each, in its own file
// (trainer/cmd_<name>.c). Each returns the process exit status.
#ifndef CISPO_TRAINER_COMMANDS_H
#define CISPO_TRAINER_COMMANDS_H

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  // argv[0] is the subcommand name
    const char *summary;
} cispo_command_t;

// The table lives in trainer/command_table.c; add a line there for a new subcommand.
extern const cispo_command_t cispo_commands[];

#endif
