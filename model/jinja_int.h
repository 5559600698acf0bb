// model/jinja_int.h — internals of the Jinja2 subset shared by model/jinja_parse.c (lexer and parser
// into a tree) and model/jinja_eval.c (values and the tree walker). Not for use outside model/jinja*.
// defines: jarena_t, jval_t, jnode_t, jinja_template, jarena_alloc, jarena_strndup, jarena_free
#ifndef CISPO_MODEL_JINJA_INT_H
#define CISPO_MODEL_JINJA_INT_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "model/jinja.h"

// Bump allocator: everything of a parse (nodes) or of a render (values) lives in one arena, freed
// at once, so an error anywhere can unwind with longjmp without leaking.
typedef struct jarena_block {
    struct jarena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
} jarena_block_t;
typedef struct {
    jarena_block_t *head;
} jarena_t;
void *jarena_alloc(jarena_t *a, size_t n);  // zeroed
char *jarena_strndup(jarena_t *a, const char *s, size_t n);
void jarena_free(jarena_t *a);

typedef enum {
    JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_MACRO, JV_FUNC,
} jtype_t;

struct jlist;
struct jdict;
struct jnode;

typedef struct jval {
    jtype_t t;
    union {
        int b;
        long long i;
        double f;
        struct { const char *p; size_t n; int safe; } s;  // JV_STR (not NUL-terminated in general);
                                                          //   safe: a Markup (the `safe` filter's result)
        struct jlist *l;                          // JV_LIST (tuples too)
        struct jdict *d;                          // JV_DICT (namespace() objects too)
        const struct jnode *macro;                // JV_MACRO
        struct { int id; struct jval *self; } fn; // JV_FUNC: a global or a method bound to self
    } u;
    const char *undef_name;  // JV_UNDEF: what was looked up, for error messages
    const char *undef_msg;   // JV_UNDEF: jinja2's message when not "'<undef_name>' is undefined"
} jval_t;

typedef struct jlist {
    jval_t *v;
    size_t n, cap;
    int is_tuple;  // a tuple: (a, b) literals, dict items; printed (a, b), never equal to a list
    int is_gen;    // a generator (map, select, reject, selectattr, rejectattr): true even when empty, no
                   //   len, index or JSON; iterating it uses it up (consumed)
    int consumed;
} jlist_t;

typedef struct jdict {
    jval_t *k;  // keys (strings in practice)
    jval_t *v;
    size_t n, cap;
    int is_namespace;
} jdict_t;

typedef enum {
    // expressions
    JN_LIT, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_ATTR, JN_INDEX, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST,
    JN_NOT, JN_NEG, JN_POS, JN_BIN, JN_AND, JN_OR, JN_COND,
    JN_BLOCKVAL,  // the rendered body of a filter block or filtered set block: the filters' operand
    // statements
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SETBLOCK, JN_MACRO, JN_BREAK, JN_CONTINUE, JN_BODY,
    JN_FILTERBLOCK,
} jkind_t;

typedef enum {
    JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW, JOP_CONCAT,
    JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
} jop_t;

typedef struct jnode {
    jkind_t kind;
    int op;              // JN_BIN: jop_t; JN_TEST: 1 when negated (`is not`)
    int line, col;
    const char *name;    // NAME, ATTR, FILTER/TEST name, SET target, MACRO name, TEXT text (len in n_text)
    size_t n_text;
    const char *attr;    // SET ns.attr target's attribute
    jval_t lit;          // LIT
    struct jnode *a, *b, *c;  // operands: ATTR/INDEX/FILTER/TEST/CALL object a; INDEX b; SLICE a[b:c:d];
                              //   FILTERBLOCK and SETBLOCK: a the filter chain over a JN_BLOCKVAL (or NULL)
    struct jnode *d;          //   COND: b if a else c; FOR: a iter, b filter; IF: a cond
    struct jnode **args;      // CALL/FILTER/TEST args; LIST/TUPLE items; DICT keys; BODY statements;
    int n_args;               //   IF/FOR: body is args
    const char **kwnames;     // CALL/FILTER: keyword names (NULL for positional), parallel to args
    struct jnode **args2;     // DICT values; IF/FOR: else body; MACRO: parameter defaults (NULL: none)
    int n_args2;
    const char **targets;     // FOR targets; MACRO parameter names
    int n_targets;
} jnode_t;

struct jinja_template {
    jarena_t arena;
    jnode_t *root;  // JN_BODY
    char *name;
};

#endif
