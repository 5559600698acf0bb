// base/yaml.c — libyaml's event stream into a ynode_t tree (yaml.h).
#include "base/yaml.h"

#include <string.h>
#include <yaml.h>

#include "base/common.h"

#define MAX_DEPTH 64  // nesting bound: a hostile file cannot exhaust the stack

static ynode_t *node_new(ynode_kind_t kind, const yaml_event_t *ev) {
    ynode_t *n = cispo_calloc(1, sizeof *n);
    n->kind = kind;
    n->line = (int)ev->start_mark.line + 1;
    return n;
}

static void node_add(ynode_t *parent, ynode_t *kid) {
    parent->kids = cispo_realloc(parent->kids, sizeof *parent->kids * (size_t)(parent->n + 1));
    parent->kids[parent->n++] = kid;
}

static int parse_error(yaml_parser_t *p, const char *origin) {
    return cispo_fail("%s:%zu: malformed YAML at line %zu, column %zu: %s", origin, p->problem_mark.line + 1,
                      p->problem_mark.line + 1, p->problem_mark.column + 1, p->problem ? p->problem : "parse error");
}

// Reads the node that starts with event ev (already parsed; this function deletes it).
static int read_node(yaml_parser_t *p, yaml_event_t *ev, const char *origin, int depth, ynode_t **out) {
    size_t line = ev->start_mark.line + 1;
    int rc = 0;
    ynode_t *n = NULL;
    if (depth > MAX_DEPTH) {
        rc = cispo_fail("%s:%zu: YAML nested more than %d levels deep", origin, line, MAX_DEPTH);
    } else if (ev->type == YAML_SCALAR_EVENT) {
        if (ev->data.scalar.tag && !ev->data.scalar.plain_implicit && !ev->data.scalar.quoted_implicit)
            rc = cispo_fail("%s:%zu: YAML tags are not supported", origin, line);
        else {
            n = node_new(YNODE_SCALAR, ev);
            n->str = cispo_strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
            n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        }
    } else if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT) {
        int is_map = ev->type == YAML_MAPPING_START_EVENT;
        n = node_new(is_map ? YNODE_MAP : YNODE_LIST, ev);
        for (;;) {
            yaml_event_t kev;
            if (!yaml_parser_parse(p, &kev)) {
                rc = parse_error(p, origin);
                break;
            }
            if (kev.type == YAML_SEQUENCE_END_EVENT || kev.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&kev);
                break;
            }
            char *key = NULL;
            if (is_map) {
                size_t kline = kev.start_mark.line + 1;
                if (kev.type != YAML_SCALAR_EVENT) {
                    yaml_event_delete(&kev);
                    rc = cispo_fail("%s:%zu: mapping keys must be plain names", origin, kline);
                    break;
                }
                key = cispo_strdup((const char *)kev.data.scalar.value);
                yaml_event_delete(&kev);
                if (ynode_get(n, key)) {
                    rc = cispo_fail("%s:%zu: key '%s' appears twice", origin, kline, key);
                    free(key);
                    break;
                }
                if (!yaml_parser_parse(p, &kev)) {
                    free(key);
                    rc = parse_error(p, origin);
                    break;
                }
            }
            ynode_t *kid = NULL;
            if (read_node(p, &kev, origin, depth + 1, &kid)) {
                free(key);
                rc = -1;
                break;
            }
            kid->key = key;
            node_add(n, kid);
        }
    } else if (ev->type == YAML_ALIAS_EVENT) {
        rc = cispo_fail("%s:%zu: YAML aliases (*name) are not supported", origin, line);
    } else {
        rc = cispo_fail("%s:%zu: unexpected YAML construct", origin, line);
    }
    // Anchors (&name) on any node are refused too: an alias elsewhere would be their only use.
    if (rc == 0 && ((ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor) ||
                    (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor) ||
                    (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor)))
        rc = cispo_fail("%s:%zu: YAML anchors (&name) are not supported", origin, line);
    yaml_event_delete(ev);
    if (rc) {
        ynode_free(n);
        return -1;
    }
    *out = n;
    return 0;
}

int yaml_load_string(const char *text, size_t len, const char *origin, ynode_t **root) {
    *root = NULL;
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) cispo_die(__FILE__, __LINE__, "yaml_parser_initialize", "out of memory");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    yaml_event_t ev;
    // stream start, then a document start (or the stream end of an empty file)
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parse_error(&p, origin);
            break;
        }
        int end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (end) {
            yaml_parser_delete(&p);
            return 0;
        }
    }
    if (rc == 0 && !yaml_parser_parse(&p, &ev)) rc = parse_error(&p, origin);
    else if (rc == 0 && ev.type == YAML_DOCUMENT_END_EVENT) yaml_event_delete(&ev);  // an empty document
    else if (rc == 0) rc = read_node(&p, &ev, origin, 0, root);
    // The document end, then the stream end: a second document is an error, not silently ignored.
    for (int i = 0; i < 2 && rc == 0 && *root; i++) {
        if (!yaml_parser_parse(&p, &ev)) {
            rc = parse_error(&p, origin);
            break;
        }
        if (i == 1 && ev.type != YAML_STREAM_END_EVENT)
            rc = cispo_fail("%s:%zu: a second YAML document; give one per file", origin, ev.start_mark.line + 1);
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    if (rc) {
        ynode_free(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

int yaml_load_file(const char *path, ynode_t **root) {
    *root = NULL;
    size_t len = 0;
    char *text = cispo_read_file(path, &len);
    if (!text) return -1;
    int rc = yaml_load_string(text, len, path, root);
    free(text);
    return rc;
}

const ynode_t *ynode_get(const ynode_t *map, const char *key) {
    if (!map || map->kind != YNODE_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->kids[i]->key, key)) return map->kids[i];
    return NULL;
}

void ynode_free(ynode_t *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) ynode_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n->key);
    free(n);
}
