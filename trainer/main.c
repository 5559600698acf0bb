// trainer/main.c — the `cispo` program: dispatches to a subcommand (trainer/command_table.c), and
// starts MPI around the commands the table marks CMD_MPI.
//   cispo <command> [args...]      cispo help      cispo <command> --help      cispo --version
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "trainer/commands.h"
#include "trainer/dist.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cispo <command> [args...]\n\ncommands:\n");
    for (const cispo_command_t *c = cispo_commands; c->name; c++)
        if (!(c->flags & CMD_ALIAS)) fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\n`cispo <command> --help` lists a command's options. Options are written --name value,\n"
               "--name=value or name=value ('-' and '_' alike); `cispo score` is another name of `cispo logprobs`.\n");
}

// Under mpirun every rank runs the command on its share of the work; a plain start is a world of one
// without MPI (dist_start does nothing then).
static int run_command(const cispo_command_t *c, int argc, char **argv) {
    if (!(c->flags & CMD_MPI)) return c->run(argc, argv);
    if (dist_start(NULL, NULL, (c->flags & CMD_MPI_QUIET) != 0)) {
        fprintf(stderr, "cispo %s: %s\n", c->name, cispo_last_error());
        return 1;
    }
    int rc = c->run(argc, argv);
    // a rank that failed alone must not wait in MPI_Finalize for peers that wait in a collective for it
    if (rc) dist_fail(dist_world(), rc);
    dist_finalize(dist_world());
    return rc;
}

#ifndef CISPO_VERSION
#define CISPO_VERSION "0.1.0"
#endif

int main(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version"))) {
        printf("cispo %s\n", CISPO_VERSION);
        return 0;
    }
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const cispo_command_t *c = cispo_commands; c->name; c++)
        if (!strcmp(argv[1], c->name)) return run_command(c, argc - 1, argv + 1);
    fprintf(stderr, "cispo: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
