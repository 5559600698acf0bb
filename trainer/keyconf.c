// trainer/keyconf.c — table-driven YAML + key=value configuration with validation (keyconf.h).
#include "trainer/keyconf.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/common.h"
#include "base/yaml.h"
#include "trainer/paths.h"

static int edit_distance(const char *a, const char *b) {
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= la; i++) d[i][0] = i;
    for (int j = 0; j <= lb; j++) d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    return d[la][lb];
}

// Key names match with '-' and '_' alike ("max-new" is "max_new").
static int key_eq(const char *a, const char *b) {
    for (; *a && *b; a++, b++)
        if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_'))) return 0;
    return *a == *b;
}

const keyconf_key_t *keyconf_find(const keyconf_key_t *keys, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (key_eq(keys[i].name, name)) return &keys[i];
    return NULL;
}

// The nearest three names by edit distance ('-' read as '_'), or those sharing a prefix.
void keyconf_suggest(const keyconf_key_t *keys, int n, const char *key, const char *prefix, char *out, size_t cap) {
    char norm[64];
    snprintf(norm, sizeof norm, "%s", key);
    int best[3] = {-1, -1, -1}, bd[3] = {99, 99, 99};
    for (int i = 0; i < n; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s", keys[i].name);
        for (char *c = norm; *c; c++) *c = *c == '-' ? '_' : *c;
        for (char *c = name; *c; c++) *c = *c == '-' ? '_' : *c;
        int d = edit_distance(norm, name);
        if (strstr(name, norm) || strstr(norm, name)) d = d < 2 ? d : 2;
        for (int s = 0; s < 3; s++)
            if (d < bd[s]) {
                for (int m = 2; m > s; m--) bd[m] = bd[m - 1], best[m] = best[m - 1];
                bd[s] = d, best[s] = i;
                break;
            }
    }
    if (cap) out[0] = 0;
    for (int s = 0; s < 3; s++)
        if (best[s] >= 0 && bd[s] <= 1 + (int)strlen(key) / 2) {
            size_t len = strlen(out);
            snprintf(out + len, cap - len, "%s%s%s", out[0] ? ", " : "", prefix, keys[best[s]].name);
        }
}

// "unknown key 'lr_warmpu' (did you mean: lr_warmup, lr?)".
static int unknown_key(const keyconf_key_t *keys, int n, const char *key, const char *origin) {
    char near[256];
    keyconf_suggest(keys, n, key, "", near, sizeof near);
    if (near[0]) return cispo_fail("%s: unknown key '%s' (did you mean: %s?)", origin, key, near);
    return cispo_fail("%s: unknown key '%s' (`cispo train --keys` lists the valid keys)", origin, key);
}

int keyconf_apply(void *cfg, const keyconf_key_t *keys, int n, const char *key, const char *value,
                  const char *origin) {
    const keyconf_key_t *k = keyconf_find(keys, n, key);
    if (!k) return unknown_key(keys, n, key, origin);
    key = k->name;  // messages use the table's spelling
    char *p = (char *)cfg + k->offset, *end;
    switch (k->type) {
    case KEY_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || end == value || *end) return cispo_fail("%s: key '%s': '%s' is not an integer", origin, key, value);
        if (v < k->min || v > k->max)
            return cispo_fail("%s: key '%s': %ld is out of range [%.15g, %.15g]", origin, key, v, k->min, k->max);
        *(int *)p = (int)v;
        return 0;
    }
    case KEY_INT64: {
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end) return cispo_fail("%s: key '%s': '%s' is not an integer", origin, key, value);
        if ((double)v < k->min || (double)v > k->max)
            return cispo_fail("%s: key '%s': %lld is out of range [%.15g, %.15g]", origin, key, v, k->min, k->max);
        *(long long *)p = v;
        return 0;
    }
    case KEY_DOUBLE: {
        errno = 0;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v))
            return cispo_fail("%s: key '%s': '%s' is not a number", origin, key, value);
        if (v < k->min || v > k->max)
            return cispo_fail("%s: key '%s': %.15g is out of range [%.15g, %.15g]", origin, key, v, k->min, k->max);
        *(double *)p = v;
        return 0;
    }
    case KEY_BOOL:
        if (!strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcmp(value, "1") || !strcasecmp(value, "on"))
            *(int *)p = 1;
        else if (!strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcmp(value, "0") ||
                 !strcasecmp(value, "off"))
            *(int *)p = 0;
        else
            return cispo_fail("%s: key '%s': '%s' is not a boolean (true/false)", origin, key, value);
        return 0;
    case KEY_STRING:
    case KEY_PATH:
        if (strlen(value) >= k->cap)
            return cispo_fail("%s: key '%s': value longer than %zu characters", origin, key, k->cap - 1);
        strcpy(p, value);
        return 0;
    case KEY_CHOICE: {
        int idx = 0;
        for (const char *c = k->choices; *c; idx++) {
            size_t len = strcspn(c, "|");
            if (strlen(value) == len && !strncmp(c, value, len)) {
                *(int *)p = idx;
                return 0;
            }
            c += len + (c[len] == '|');
        }
        return cispo_fail("%s: key '%s': '%s' is not one of %s", origin, key, value, k->choices);
    }
    }
    return cispo_fail("%s: key '%s': bad table entry", origin, key);
}

int keyconf_defaults(void *cfg, const keyconf_key_t *keys, int n) {
    for (int i = 0; i < n; i++)
        if (keyconf_apply(cfg, keys, n, keys[i].name, keys[i].def ? keys[i].def : "", "defaults")) return -1;
    return 0;
}

int keyconf_apply_override(void *cfg, const keyconf_key_t *keys, int n, const char *kv) {
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return cispo_fail("command line: '%s' is not key=value", kv);
    char key[128];
    size_t kl = (size_t)(eq - kv);
    if (kl >= sizeof key) return cispo_fail("command line: key too long in '%s'", kv);
    memcpy(key, kv, kl);
    key[kl] = 0;
    const keyconf_key_t *k = keyconf_find(keys, n, key);
    char resolved[4096];
    if (k && k->type == KEY_PATH) {  // relative to the working directory
        if (paths_resolve(eq + 1, NULL, resolved, sizeof resolved))
            return cispo_fail("command line: key '%s': %s", k->name, cispo_last_error());
        return keyconf_apply(cfg, keys, n, key, resolved, "command line");
    }
    return keyconf_apply(cfg, keys, n, key, eq + 1, "command line");
}

// A nested mapping names its keys with the parent's as a dotted prefix (optim: {lr: 1} is optim.lr).
static int apply_map(void *cfg, const keyconf_key_t *keys, int n, const ynode_t *map, const char *prefix,
                     const char *path, const char *dir, int depth) {
    for (int i = 0; i < map->n; i++) {
        const ynode_t *v = map->kids[i];
        char key[256];
        if (snprintf(key, sizeof key, "%s%s", prefix, v->key) >= (int)sizeof key)
            return cispo_fail("%s:%d: key '%s%s' is too long", path, v->line, prefix, v->key);
        if (v->kind == YNODE_LIST)
            return cispo_fail("%s:%d: key '%s': lists are not supported here; give one value", path, v->line, key);
        if (v->kind == YNODE_MAP) {
            if (depth >= 8) return cispo_fail("%s:%d: mappings nested too deep", path, v->line);
            strncat(key, ".", sizeof key - strlen(key) - 1);
            if (apply_map(cfg, keys, n, v, key, path, dir, depth + 1)) return -1;
            continue;
        }
        char origin[1100];
        snprintf(origin, sizeof origin, "%s:%d", path, v->line);
        const keyconf_key_t *k = keyconf_find(keys, n, key);
        char resolved[4096];
        const char *value = v->str;
        if (k && k->type == KEY_PATH) {  // a path in a config file is relative to the file
            if (paths_resolve(v->str, dir, resolved, sizeof resolved))
                return cispo_fail("%s: key '%s': %s", origin, k->name, cispo_last_error());
            value = resolved;
        }
        if (keyconf_apply(cfg, keys, n, key, value, origin)) return -1;
    }
    return 0;
}

int keyconf_apply_yaml(void *cfg, const keyconf_key_t *keys, int n, const char *path) {
    ynode_t *root = NULL;
    if (yaml_load_file(path, &root)) return -1;
    int rc = 0;
    if (root && root->kind != YNODE_MAP) rc = cispo_fail("%s:%d: expected a mapping of key: value lines", path, root->line);
    else if (root) {
        char dir[4096], real[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (!slash) snprintf(dir, sizeof dir, ".");
        else if (slash == dir) dir[1] = 0;
        else *slash = 0;
        if (realpath(dir, real)) snprintf(dir, sizeof dir, "%s", real);
        rc = apply_map(cfg, keys, n, root, "", path, dir, 1);
    }
    ynode_free(root);
    return rc;
}

void keyconf_format(char *buf, size_t cap, const void *cfg, const keyconf_key_t *k) {
    const char *p = (const char *)cfg + k->offset;
    switch (k->type) {
    case KEY_INT: snprintf(buf, cap, "%d", *(const int *)p); break;
    case KEY_INT64: snprintf(buf, cap, "%lld", *(const long long *)p); break;
    case KEY_DOUBLE: snprintf(buf, cap, "%.17g", *(const double *)p); break;
    case KEY_BOOL: snprintf(buf, cap, "%s", *(const int *)p ? "true" : "false"); break;
    case KEY_STRING:
    case KEY_PATH: snprintf(buf, cap, "\"%s\"", p); break;
    case KEY_CHOICE: {
        int idx = *(const int *)p;
        const char *c = k->choices;
        for (int i = 0; i < idx && *c; i++) c += strcspn(c, "|") + 1;
        snprintf(buf, cap, "%.*s", (int)strcspn(c, "|"), c);
        break;
    }
    default: buf[0] = 0;
    }
}

void keyconf_dump(FILE *f, const void *cfg, const keyconf_key_t *keys, int n) {
    char buf[1200];
    for (int i = 0; i < n; i++) {
        keyconf_format(buf, sizeof buf, cfg, &keys[i]);
        fprintf(f, "%s: %s%s%s\n", keys[i].name, buf, keys[i].help ? "  # " : "", keys[i].help ? keys[i].help : "");
    }
}
