// tests/test_keyconf.c — run-config keys: YAML and key=value, types, ranges, choices, unknown keys
// with suggestions, and the resolved dump read back to the same values.
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/keyconf.h"

typedef struct {
    int steps, greedy, loss;
    double lr;
    char out[64];
} demo_cfg_t;

static const keyconf_key_t keys[] = {
    {"steps", KEY_INT, offsetof(demo_cfg_t, steps), 0, 1e6, NULL, "10", "RL steps", 0},
    {"greedy", KEY_BOOL, offsetof(demo_cfg_t, greedy), 0, 0, NULL, "false", "greedy decoding", 0},
    {"loss", KEY_CHOICE, offsetof(demo_cfg_t, loss), 0, 0, "cispo|grpo|dapo", "cispo", "policy loss", 0},
    {"lr", KEY_DOUBLE, offsetof(demo_cfg_t, lr), 0, 1, NULL, "1e-3", "learning rate", 0},
    {"lr_warmup", KEY_INT, offsetof(demo_cfg_t, steps), 0, 100, NULL, "0", "warmup", 0},
    {"optim.out", KEY_STRING, offsetof(demo_cfg_t, out), 0, 0, NULL, "runs/x", "run dir", 64},
};
enum { NK = sizeof keys / sizeof keys[0] };

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

int main(void) {
    demo_cfg_t c;
    test_check(keyconf_defaults(&c, keys, NK) == 0 && c.steps == 0 && c.lr == 1e-3 && c.loss == 0 && !strcmp(c.out, "runs/x"),
               "defaults");
    const char *y = "/tmp/cispo_keyconf_test.yaml";
    write_file(y, "steps: 7\nloss: dapo\nlr: 2.5e-4\noptim:\n  out: runs/y\ngreedy: yes\n");
    test_check(keyconf_apply_yaml(&c, keys, NK, y) == 0, "yaml: %s", cispo_last_error());
    test_check(c.steps == 7 && c.loss == 2 && c.lr == 2.5e-4 && !strcmp(c.out, "runs/y") && c.greedy == 1, "yaml values");
    test_check(keyconf_apply_override(&c, keys, NK, "loss=grpo") == 0 && c.loss == 1, "override");

    test_check(keyconf_apply_override(&c, keys, NK, "lr_warmpu=3") == -1 && strstr(cispo_last_error(), "lr_warmup"),
               "unknown key suggests the near one: %s", cispo_last_error());
    test_check(keyconf_apply_override(&c, keys, NK, "lr=2") == -1 && strstr(cispo_last_error(), "out of range"),
               "range: %s", cispo_last_error());
    test_check(keyconf_apply_override(&c, keys, NK, "steps=1.5") == -1 && strstr(cispo_last_error(), "not an integer"),
               "type: %s", cispo_last_error());
    test_check(keyconf_apply_override(&c, keys, NK, "loss=ppo2") == -1 && strstr(cispo_last_error(), "cispo|grpo|dapo"),
               "choice: %s", cispo_last_error());
    test_check(keyconf_apply_override(&c, keys, NK, "steps") == -1, "not key=value");
    write_file(y, "steps: 3\nstepz: 4\n");
    test_check(keyconf_apply_yaml(&c, keys, NK, y) == -1 && strstr(cispo_last_error(), ":2:") &&
                   strstr(cispo_last_error(), "stepz"),
               "yaml error names file:line and key: %s", cispo_last_error());
    write_file(y, "steps: [1, 2\n");
    test_check(keyconf_apply_yaml(&c, keys, NK, y) == -1, "malformed yaml: %s", cispo_last_error());

    // dump -> yaml -> same values
    keyconf_defaults(&c, keys, NK);
    keyconf_apply_override(&c, keys, NK, "lr=0.1234567890123");
    keyconf_apply_override(&c, keys, NK, "loss=dapo");
    FILE *f = fopen(y, "w");
    keyconf_dump(f, &c, keys, NK);
    fclose(f);
    demo_cfg_t d;
    keyconf_defaults(&d, keys, NK);
    test_check(keyconf_apply_yaml(&d, keys, NK, y) == 0 && d.lr == c.lr && d.loss == 2 && !strcmp(d.out, c.out),
               "dump reads back: %s", cispo_last_error());
    unlink(y);

    // command lines (keyconf_parse_cli): three forms, '-' for '_', flags, positionals, errors
    static const keyconf_cli_t cli = {"cispo test", "cispo test [FILE] [options]", NULL, keys, NK, 1};
    char a0[] = "test", a1[] = "--steps", a2[] = "5", a3[] = "loss=grpo", a4[] = "--lr-warmup=7", a5[] = "--greedy",
         a6[] = "in.txt", a7[] = "--optim.out", a8[] = "runs/z";
    char *argv[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8};
    const char *pos[1] = {NULL};
    int n_pos = -1;
    unsigned char given[NK] = {0};
    keyconf_defaults(&c, keys, NK);
    int rc = keyconf_parse_cli(&cli, &c, 9, argv, pos, &n_pos, given);
    test_check(rc == 0 && c.steps == 7 && c.loss == 1 && c.greedy == 1 && !strcmp(c.out, "runs/z") && n_pos == 1 &&
                   !strcmp(pos[0], "in.txt") && given[0] && given[1] && given[2] && !given[3] && given[4],
               "cli: --k v, k=v, --k-with-dashes=v, a flag, a positional (rc %d: %s)", rc, rc ? cispo_last_error() : "");
    char b1[] = "--greedy=no", b2[] = "--stepz", b3[] = "3", b4[] = "--lr", b5[] = "x.txt", b6[] = "y.txt";
    char *argv2[] = {a0, b1};
    test_check(keyconf_parse_cli(&cli, &c, 2, argv2, pos, &n_pos, NULL) == 0 && c.greedy == 0, "cli: --flag=no turns it off");
    char *argv3[] = {a0, b2, b3};
    test_check(keyconf_parse_cli(&cli, &c, 3, argv3, pos, &n_pos, NULL) == -1 && strstr(cispo_last_error(), "--stepz") &&
                   strstr(cispo_last_error(), "did you mean: --steps"),
               "cli: misspelt option: %s", cispo_last_error());
    char *argv4[] = {a0, b4};
    test_check(keyconf_parse_cli(&cli, &c, 2, argv4, pos, &n_pos, NULL) == -1 && strstr(cispo_last_error(), "needs a value"),
               "cli: missing value: %s", cispo_last_error());
    char *argv5[] = {a0, b5, b6};
    test_check(keyconf_parse_cli(&cli, &c, 3, argv5, pos, &n_pos, NULL) == -1 && strstr(cispo_last_error(), "y.txt"),
               "cli: one positional too many: %s", cispo_last_error());
    return test_finish("test_keyconf");
}
