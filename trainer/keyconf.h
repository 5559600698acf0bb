// trainer/keyconf.h — table-driven run configuration: a flat YAML mapping (libyaml) plus
// key=value overrides from the command line, each key checked against a table (type, range,
// allowed words). An unknown key is an error that names the nearest valid keys.
// defines: keyconf_key_t, keyconf_apply_yaml, keyconf_apply_override, keyconf_dump, keyconf_defaults
#ifndef CISPO_TRAINER_KEYCONF_H
#define CISPO_TRAINER_KEYCONF_H

#include <stddef.h>
#include <stdio.h>

enum keyconf_type { KEY_INT, KEY_DOUBLE, KEY_BOOL, KEY_STRING, KEY_CHOICE };

typedef struct {
    const char *name;     // "lr", "group_size", ...
    int type;             // enum keyconf_type
    size_t offset;        // offsetof(struct, field): int for INT/BOOL/CHOICE, double, char[cap] for STRING
    double min, max;      // inclusive range for INT/DOUBLE
    const char *choices;  // CHOICE: "cispo|grpo|dapo" (stored as the index); STRING: NULL
    const char *def;      // default, as text
    const char *help;     // one line
    size_t cap;           // STRING: capacity of the char array
} keyconf_key_t;

// Sets every key of the table to its default.
int keyconf_defaults(void *cfg, const keyconf_key_t *keys, int n);
// Applies one "key=value" (origin names where it came from, for messages).
int keyconf_apply(void *cfg, const keyconf_key_t *keys, int n, const char *key, const char *value, const char *origin);
// "key=value" text form.
int keyconf_apply_override(void *cfg, const keyconf_key_t *keys, int n, const char *kv);
// A YAML file holding one flat mapping of scalars (nested mappings flatten to dotted keys).
int keyconf_apply_yaml(void *cfg, const keyconf_key_t *keys, int n, const char *path);
// Writes the resolved configuration as YAML (every key, with its help as a comment).
void keyconf_dump(FILE *f, const void *cfg, const keyconf_key_t *keys, int n);
// The value of a key as text (buf of cap bytes).
void keyconf_format(char *buf, size_t cap, const void *cfg, const keyconf_key_t *k);

#endif
