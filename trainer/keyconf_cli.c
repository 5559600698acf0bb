// trainer/keyconf_cli.c — one command-line style for every subcommand: options from a keyconf table
// (typed, range-checked, did-you-mean), written --key value, --key=value or key=value (keyconf.h).
// defines: keyconf_parse_cli, keyconf_print_help
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "trainer/keyconf.h"
#include "trainer/paths.h"

// "key=value" with a name before the '=' (so a path such as runs/a=b stays a positional argument).
static int is_setting(const char *a) {
    const char *eq = strchr(a, '=');
    if (!eq || eq == a) return 0;
    for (const char *c = a; c < eq; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
              *c == '-' || *c == '.'))
            return 0;
    return a[0] != '-';
}

// "integer in [1, 1000000]" and the like: what a value of k must be.
static void describe(char *buf, size_t cap, const keyconf_key_t *k) {
    switch (k->type) {
    case KEY_INT:
    case KEY_INT64: snprintf(buf, cap, "an integer in [%.15g, %.15g]", k->min, k->max); break;
    case KEY_DOUBLE: snprintf(buf, cap, "a number in [%.15g, %.15g]", k->min, k->max); break;
    case KEY_BOOL: snprintf(buf, cap, "true or false"); break;
    case KEY_CHOICE: snprintf(buf, cap, "one of %s", k->choices); break;
    case KEY_PATH: snprintf(buf, cap, "a path"); break;
    default: snprintf(buf, cap, "text"); break;
    }
}

static int unknown(const keyconf_cli_t *cli, const char *name, int dashed) {
    char near[256];
    keyconf_suggest(cli->keys, cli->n_keys, name, dashed ? "--" : "", near, sizeof near);
    const char *what = dashed ? "option" : "key";
    if (near[0]) return cispo_fail("command line: unknown %s '%s%s' (did you mean: %s?)", what, dashed ? "--" : "", name, near);
    return cispo_fail("command line: unknown %s '%s%s' (`%s --help` lists the options)", what, dashed ? "--" : "", name,
                      cli->name);
}

int keyconf_parse_cli(const keyconf_cli_t *cli, void *cfg, int argc, char **argv, const char **positional,
                      int *n_positional, unsigned char *given) {
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            keyconf_print_help(stdout, cli, cfg);
            return 1;
        }
    int n_pos = 0, options_done = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *value = NULL;
        char name[128];
        const keyconf_key_t *k = NULL;
        if (!options_done && !strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        int dashed = !options_done && a[0] == '-' && a[1] == '-';
        if (!dashed && !options_done && a[0] == '-' && a[1])
            return cispo_fail("command line: unknown option '%s' (options are written --name; `%s --help` lists them)", a,
                              cli->name);
        if (dashed || (!options_done && is_setting(a))) {
            const char *body = dashed ? a + 2 : a, *eq = strchr(body, '=');
            size_t len = eq ? (size_t)(eq - body) : strlen(body);
            if (len == 0 || len >= sizeof name) return cispo_fail("command line: '%s' is not an option name", a);
            memcpy(name, body, len);
            name[len] = 0;
            if (!(k = keyconf_find(cli->keys, cli->n_keys, name))) return unknown(cli, name, dashed);
            if (eq) value = eq + 1;
            else if (k->type == KEY_BOOL) value = "true";  // a flag
            else if (i + 1 < argc) value = argv[++i];
            else {
                char want[128];
                describe(want, sizeof want, k);
                return cispo_fail("command line: option '--%s' needs a value (%s)", k->name, want);
            }
            char resolved[4096];
            if (k->type == KEY_PATH) {  // a path on the command line is the user's, from where they stand
                if (paths_resolve(value, NULL, resolved, sizeof resolved))
                    return cispo_fail("command line: option '--%s': %s", k->name, cispo_last_error());
                value = resolved;
            }
            if (keyconf_apply(cfg, cli->keys, cli->n_keys, k->name, value, "command line")) return -1;
            if (given) given[k - cli->keys] = 1;
            continue;
        }
        if (n_pos >= cli->max_positional)
            return cispo_fail("command line: unexpected argument '%s' (%s; `%s --help` lists the options)", a,
                              cli->max_positional ? "too many arguments" : "this command takes only --options", cli->name);
        positional[n_pos++] = a;
    }
    if (n_positional) *n_positional = n_pos;
    return 0;
}

void keyconf_print_help(FILE *f, const keyconf_cli_t *cli, const void *cfg) {
    fprintf(f, "usage: %s\n", cli->usage);
    if (cli->about) fprintf(f, "%s\n", cli->about);
    if (!cli->n_keys) return;
    fprintf(f, "\noptions (--name value, --name=value or name=value; '-' and '_' alike in names):\n");
    for (int i = 0; i < cli->n_keys; i++) {
        const keyconf_key_t *k = &cli->keys[i];
        static const char *const meta[] = {[KEY_INT] = " N", [KEY_DOUBLE] = " X", [KEY_BOOL] = "",
                                           [KEY_STRING] = " TEXT", [KEY_CHOICE] = " WORD", [KEY_INT64] = " N",
                                           [KEY_PATH] = " PATH"};
        char left[96], type[160], def[1200];
        snprintf(left, sizeof left, "--%s%s", k->name, meta[k->type]);
        if (k->type == KEY_BOOL) snprintf(type, sizeof type, "flag, or =true/false");
        else describe(type, sizeof type, k);
        if (cfg) keyconf_format(def, sizeof def, cfg, k);
        else snprintf(def, sizeof def, "%s", k->def ? k->def : "");
        int none = !def[0] || !strcmp(def, "\"\"");
        fprintf(f, "  %-24s %s (%s; %s%s)\n", left, k->help ? k->help : "", type, none ? "no default" : "default ",
                none ? "" : def);
    }
}
