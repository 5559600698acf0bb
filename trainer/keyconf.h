// trainer/keyconf.h — table-driven run configuration: a flat YAML mapping (libyaml) plus
// key=value overrides from the command line, each key checked against a table (type, range,
// allowed words). An unknown key is an error that names the nearest valid keys. The same tables parse
// every subcommand's command line (keyconf_parse_cli, in trainer/keyconf_cli.c).
// defines: keyconf_key_t, keyconf_apply_yaml, keyconf_apply_override, keyconf_dump, keyconf_defaults,
//          keyconf_find, keyconf_suggest, keyconf_cli_t, keyconf_parse_cli, keyconf_print_help
#ifndef CISPO_TRAINER_KEYCONF_H
#define CISPO_TRAINER_KEYCONF_H

#include <stddef.h>
#include <stdio.h>

// KEY_PATH is a KEY_STRING naming a file: from a YAML file it is resolved against the file's directory, from
// the command line against the working directory (trainer/paths.h; a bare word naming no file stays a name).
enum keyconf_type { KEY_INT, KEY_DOUBLE, KEY_BOOL, KEY_STRING, KEY_CHOICE, KEY_INT64, KEY_PATH };

typedef struct {
    const char *name;     // "lr", "group_size", ...
    int type;             // enum keyconf_type
    size_t offset;        // offsetof(struct, field): int for INT/BOOL/CHOICE, long long for INT64, double,
                          // char[cap] for STRING and PATH
    double min, max;      // inclusive range for INT/INT64/DOUBLE
    const char *choices;  // CHOICE: "cispo|grpo|dapo" (stored as the index); STRING: NULL
    const char *def;      // default, as text
    const char *help;     // one line
    size_t cap;           // STRING, PATH: capacity of the char array
} keyconf_key_t;

// The key named name ('-' and '_' alike), or NULL.
const keyconf_key_t *keyconf_find(const keyconf_key_t *keys, int n, const char *name);
// Up to three valid names nearest to key, each after prefix, comma-separated into out ("" when none is near).
void keyconf_suggest(const keyconf_key_t *keys, int n, const char *key, const char *prefix, char *out, size_t cap);
// Sets every key of the table to its default.
int keyconf_defaults(void *cfg, const keyconf_key_t *keys, int n);
// Applies one "key=value" (origin names where it came from, for messages).
int keyconf_apply(void *cfg, const keyconf_key_t *keys, int n, const char *key, const char *value, const char *origin);
// "key=value" text form.
int keyconf_apply_override(void *cfg, const keyconf_key_t *keys, int n, const char *kv);
// A YAML file holding one flat mapping of scalars (nested mappings flatten to dotted keys); KEY_PATH values
// are resolved against the file's directory.
int keyconf_apply_yaml(void *cfg, const keyconf_key_t *keys, int n, const char *path);
// Writes the resolved configuration as YAML (every key, with its help as a comment).
void keyconf_dump(FILE *f, const void *cfg, const keyconf_key_t *keys, int n);
// The value of a key as text (buf of cap bytes).
void keyconf_format(char *buf, size_t cap, const void *cfg, const keyconf_key_t *k);

// ---- command lines ----
// One subcommand's command line. Every option is a key of the table and may be written
// `--key value`, `--key=value` or `key=value`, with '-' and '_' alike in names; a KEY_BOOL option
// written `--key` alone is a flag (true); `--key=false` turns it off. A bare argument is positional
// (a `key=value` form needs letters, digits, '_', '-' or '.' before the '='); after `--` every
// argument is positional. `--help` or `-h` prints keyconf_print_help.
typedef struct {
    const char *name;           // "cispo generate": messages and the help header
    const char *usage;          // usage line(s), without a trailing newline
    const char *about;          // a paragraph after the usage (NULL: none)
    const keyconf_key_t *keys;  // the options, in --help order
    int n_keys;
    int max_positional;         // positional arguments accepted (more is an error)
} keyconf_cli_t;

// Parses argv[1..argc) into cfg (which the caller has set to its defaults). positional[] (room for
// max_positional) receives the bare arguments, *n_positional their count; given (n_keys entries,
// or NULL) marks the keys set. Returns 0; 1 when --help was asked for (help printed on stdout);
// -1 + message naming the option and the bad value, or a misspelt option with the nearest names.
int keyconf_parse_cli(const keyconf_cli_t *cli, void *cfg, int argc, char **argv, const char **positional,
                      int *n_positional, unsigned char *given);
// Usage, about, then one line per option: name, type, range, default (cfg's value; NULL: the table's)
// and help.
void keyconf_print_help(FILE *f, const keyconf_cli_t *cli, const void *cfg);

#endif
