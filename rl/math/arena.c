// rl/math/arena.c — the per-verdict node arena of the math checker.
// defines: mv_arena_*, mv_alloc, mv_strndup, mv_new, mv_new1, mv_new2, mv_num_int
#include <stdio.h>
#include <string.h>

#include "base/common.h"
#include "rl/math/mv_internal.h"

// Blocks of 16 KiB (or larger for big requests); a verdict usually needs one.
struct mv_arena_block {
    mv_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

void mv_arena_init(mv_arena *a) {
    a->head = NULL;
    a->nodes = 0;
    a->overflow = 0;
}

void mv_arena_free(mv_arena *a) {
    while (a->head) {
        mv_arena_block *n = a->head->next;
        free(a->head);
        a->head = n;
    }
    a->nodes = 0;
    a->overflow = 0;
}

void *mv_alloc(mv_arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!a->head || a->head->used + n > a->head->cap) {
        size_t cap = n > 16384 ? n : 16384;
        mv_arena_block *b = cispo_malloc(sizeof *b + cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

char *mv_strndup(mv_arena *a, const char *s, size_t n) {
    char *p = mv_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

mv_node *mv_new(mv_arena *a, mv_kind kind, int n) {
    if (a->nodes >= MV_MAX_NODES) {
        a->overflow = 1;
        return NULL;
    }
    a->nodes++;
    mv_node *x = mv_alloc(a, sizeof *x);
    memset(x, 0, sizeof *x);
    x->kind = kind;
    x->n = n;
    if (n > 0) {
        x->kid = mv_alloc(a, sizeof(mv_node *) * (size_t)n);
        memset(x->kid, 0, sizeof(mv_node *) * (size_t)n);
    }
    return x;
}

mv_node *mv_new1(mv_arena *a, mv_kind kind, mv_node *x) {
    if (!x) return NULL;
    mv_node *r = mv_new(a, kind, 1);
    if (r) r->kid[0] = x;
    return r;
}

mv_node *mv_new2(mv_arena *a, mv_kind kind, mv_node *x, mv_node *y) {
    if (!x || !y) return NULL;
    mv_node *r = mv_new(a, kind, 2);
    if (r) {
        r->kid[0] = x;
        r->kid[1] = y;
    }
    return r;
}

mv_node *mv_num_int(mv_arena *a, long v) {
    char tmp[32];
    int len = snprintf(tmp, sizeof tmp, "%ld", v < 0 ? -v : v);
    mv_node *x = mv_new(a, MV_NUM, 0);
    if (!x) return NULL;
    x->str = mv_strndup(a, tmp, (size_t)len);
    return v < 0 ? mv_new1(a, MV_NEG, x) : x;
}
