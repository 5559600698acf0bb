// trainer/main.c — the `cispo` program: dispatches to a subcommand (trainer/command_table.c).
//   cispo <command> [args...]      cispo help
#include <stdio.h>
#include <string.h>

#include "trainer/commands.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cispo <command> [args...]\n\ncommands:\n");
    for (const cispo_command_t *c = cispo_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n`cispo <command> --help` describes one command.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const cispo_command_t *c = cispo_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return c->run(argc - 1, argv + 1);
    fprintf(stderr, "cispo: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
