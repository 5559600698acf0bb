// base/yaml.h — the one YAML reader: a file or string into a small tree of scalars, lists and
// mappings, every node carrying its line, every error naming file:line. Run configs
// (trainer/keyconf.c) and model presets (model/config.c) both read through it.
// defines: ynode_t, ynode_kind_t, yaml_load_file, yaml_load_string, ynode_get, ynode_free
//
//   ynode_t *root;
//   if (yaml_load_file("configs/demo.yaml", &root)) fail: cispo_last_error() = "configs/demo.yaml:3: ..."
//   const ynode_t *lr = ynode_get(root, "lr");   // NULL when absent; lr->str = "3e-4", lr->line = 5
//   ynode_free(root);
//
// Supported: block and flow mappings and lists, plain and quoted scalars, comments. Refused with an
// error: anchors, aliases, tags (configs never need them), a key given twice, non-scalar keys.
// Scalars stay text; the user types them (plain says whether null/true/numbers may be meant).
#ifndef CISPO_BASE_YAML_H
#define CISPO_BASE_YAML_H

#include <stddef.h>

typedef enum { YNODE_SCALAR, YNODE_LIST, YNODE_MAP } ynode_kind_t;

typedef struct ynode {
    ynode_kind_t kind;
    int line;              // 1-based line where the node starts
    char *str;             // SCALAR: the text (never NULL)
    int plain;             // SCALAR: 1 when unquoted (so `null`, `true` and `3` may be typed values)
    char *key;             // the key of a MAP's child; NULL otherwise
    struct ynode **kids;   // [n] LIST items or MAP entries, in file order
    int n;
} ynode_t;

// Parses the file at path (origin of messages) into *root. An empty document gives *root = NULL.
// Returns 0, or -1 with cispo_last_error() = "path:line: problem".
int yaml_load_file(const char *path, ynode_t **root);
// The same for text[0, len), messages naming origin.
int yaml_load_string(const char *text, size_t len, const char *origin, ynode_t **root);
// The value of key in a mapping (NULL when map is not a mapping or has no such key).
const ynode_t *ynode_get(const ynode_t *map, const char *key);
void ynode_free(ynode_t *n);

#endif
