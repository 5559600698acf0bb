// rl/math/parse.c — recursive-descent parser: one normalised LaTeX answer -> expression tree.
// defines: mv_parse
//
// Grammar, loosest first:
//   list    := rel ((',' | ';' | and | or | \text{and}) rel)*      LIST ("and"/"or": unordered)
//   rel     := ratio (relop ratio)*                                 = < > \le \ge \ne \approx \in
//   ratio   := setexpr (':' setexpr)?
//   setexpr := expr ((\cup | \cap | \setminus) expr)*
//   expr    := [+-\pm] term (('+' | '-' | \pm | \mp) term)*
//   term    := unary (('*' | \cdot | \times | '/' | \div | implicit) unary)*   (2\frac12 = 2 + 1/2)
//   unary   := '-' unary | '+' unary | power
//   power   := postfix ('^' script)?
//   postfix := primary ('!' | \% | ' | \degree)*                   (\degree: pi/180 in a trig argument)
//   primary := number | letter[_sub][(args)] | \frac | \sqrt[n] | \binom | function [^p] arg | ( list ) |
//              [ list ) | \{ list \} | { list } | |expr| | \text{..} | \begin{pmatrix}..\end{pmatrix} | \sum ..
// Malformed LaTeX from models is accepted where the meaning is clear: \frac12, \frac3{3}, \sqrt3,
// x^23 (x^{23}), \sin x. Depth and node counts are bounded (MV_MAX_DEPTH, MV_MAX_NODES).
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "rl/math/mv_internal.h"

enum { T_END, T_NUM, T_LETTER, T_WORD, T_CMD, T_CHAR };

typedef struct {
    int t;
    const char *s;  // token text (for CMD: the name after the backslash)
    size_t n;
    size_t pos, end;  // in the source
} tok_t;

typedef struct {
    const char *s;
    size_t n, pos;
    mv_arena *a;
    int depth, fail, in_abs;
    int in_trig;  // inside the argument of sin, cos, ...: a degree mark scales by pi/180
    tok_t cur;
} parser;

static const char *const kWords[] = {"and", "or", "sin", "cos", "tan", "sec", "csc", "cot", "log", "ln", "exp",
                                     "sqrt", "pi", "infinity", "inf", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh"};

static int word_is(const char *s, size_t n, const char *w) { return strlen(w) == n && !memcmp(s, w, n); }

// \overline or \bar at s: the repeating digits of a decimal (0.1\overline{6}).
static int repeat_cmd(const char *s, size_t n) {
    size_t k = 0;
    while (k < n && isalpha((unsigned char)s[k])) k++;
    return (k == 8 && !memcmp(s, "overline", 8)) || (k == 3 && !memcmp(s, "bar", 3));
}

static void lex(parser *p) {
    const char *s = p->s;
    size_t i = p->pos;
    while (i < p->n && isspace((unsigned char)s[i])) i++;
    tok_t t = {T_END, s + i, 0, i, i};
    if (i >= p->n) {
        p->cur = t;
        p->pos = i;
        return;
    }
    char c = s[i];
    if (isdigit((unsigned char)c) || (c == '.' && i + 1 < p->n && isdigit((unsigned char)s[i + 1]))) {
        size_t j = i;
        while (j < p->n && isdigit((unsigned char)s[j])) j++;
        if (j < p->n && s[j] == '.' && j + 1 < p->n && isdigit((unsigned char)s[j + 1])) {
            j++;
            while (j < p->n && isdigit((unsigned char)s[j])) j++;
        } else if (j < p->n && s[j] == '.' && j + 1 < p->n && s[j + 1] == '\\' && repeat_cmd(s + j + 2, p->n - j - 2)) {
            j++;  // "0.\overline{3}": the point belongs to the number
        } else if (j < p->n && s[j] == '.' && (j + 1 == p->n || !isalpha((unsigned char)s[j + 1])) && j > i &&
                   (j + 1 == p->n || s[j + 1] == ' ' || s[j + 1] == '}' || s[j + 1] == ')' || s[j + 1] == ',')) {
            j++;  // "5." is 5
        }
        // scientific notation 1.5e-3 / 2E10 (only when digits follow the e)
        if (j < p->n && (s[j] == 'e' || s[j] == 'E')) {
            size_t k = j + 1;
            if (k < p->n && (s[k] == '-' || s[k] == '+')) k++;
            if (k < p->n && isdigit((unsigned char)s[k]) && (k + 1 >= p->n || !isalpha((unsigned char)s[k + 1]) || k > j + 1)) {
                while (k < p->n && isdigit((unsigned char)s[k])) k++;
                j = k;
            }
        }
        t.t = T_NUM;
        t.n = j - i;
        t.end = j;
    } else if (isalpha((unsigned char)c)) {
        size_t j = i;
        while (j < p->n && isalpha((unsigned char)s[j])) j++;
        t.t = T_LETTER;
        t.n = 1;
        t.end = i + 1;
        for (size_t w = 0; w < sizeof kWords / sizeof kWords[0]; w++)
            if (word_is(s + i, j - i, kWords[w])) {
                t.t = T_WORD;
                t.n = j - i;
                t.end = j;
            }
    } else if (c == '\\') {
        size_t j = i + 1;
        while (j < p->n && isalpha((unsigned char)s[j])) j++;
        if (j == i + 1 && j < p->n) j++;  // \{ \} \% \\ \|
        t.t = T_CMD;
        t.s = s + i + 1;
        t.n = j - i - 1;
        t.end = j;
    } else {
        t.t = T_CHAR;
        t.n = 1;
        t.end = i + 1;
    }
    p->cur = t;
    p->pos = t.end;
}

static void next(parser *p) { lex(p); }
static int is_char(const parser *p, char c) { return p->cur.t == T_CHAR && p->cur.s[0] == c; }
static int is_cmd(const parser *p, const char *name) { return p->cur.t == T_CMD && word_is(p->cur.s, p->cur.n, name); }
static int is_word(const parser *p, const char *w) { return p->cur.t == T_WORD && word_is(p->cur.s, p->cur.n, w); }

static mv_node *fail(parser *p) {
    p->fail = 1;
    if (p->depth > MV_MAX_DEPTH) p->a->overflow = 1;  // a limit, not a syntax error: no other reading
    return NULL;
}

static mv_node *or_fail(parser *p, mv_node *x) { return x ? x : fail(p); }

static mv_node *parse_list(parser *p);
static mv_node *parse_rel(parser *p);
static mv_node *parse_expr(parser *p);
static mv_node *parse_term(parser *p, int implicit_only);
static mv_node *parse_unary(parser *p);
static mv_node *parse_power(parser *p);
static mv_node *constant(parser *p, const char *name);
static mv_node *parse_primary(parser *p);

// Content [b, e) of a brace group at the current token '{'; moves past it.
static int raw_group(parser *p, size_t *b, size_t *e) {
    if (!is_char(p, '{')) return 0;
    int depth = 1;
    size_t j = p->cur.end;
    while (j < p->n && depth > 0) {
        if (p->s[j] == '\\' && j + 1 < p->n) {
            j += 2;
            continue;
        }
        if (p->s[j] == '{') depth++;
        if (p->s[j] == '}') depth--;
        j++;
    }
    if (depth) return 0;
    *b = p->cur.end;
    *e = j - 1;
    p->pos = j;
    next(p);
    return 1;
}

// Parses s[b, e) as a sub-expression with the same arena and depth budget.
static mv_node *parse_sub(parser *p, size_t b, size_t e) {
    parser q = *p;
    q.n = e;
    q.pos = b;
    q.fail = 0;
    q.in_abs = 0;
    next(&q);
    mv_node *x = parse_list(&q);
    if (q.fail || q.cur.t != T_END) x = NULL;
    return x;
}

// ---- text ----

static int text_cmd(const tok_t *t) {
    static const char *const names[] = {"text", "textbf", "textit", "textrm", "textnormal", "mbox", "mathrm", "mathbf",
                                        "mathit", "textsf", "mathsf", "boldsymbol", "bm", "mathcal", "mathbb", "operatorname"};
    if (t->t != T_CMD) return 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (word_is(t->s, t->n, names[i])) return 1;
    return 0;
}

static void trim(const char *s, size_t *b, size_t *e) {
    while (*b < *e && isspace((unsigned char)s[*b])) (*b)++;
    while (*e > *b && isspace((unsigned char)s[*e - 1])) (*e)--;
}

// \text{ and } / \text{or} / plain and, or: a list separator
static int at_word_separator(parser *p) {
    if (is_word(p, "and") || is_word(p, "or")) return 1;
    if (text_cmd(&p->cur)) {
        size_t j = p->cur.end;
        while (j < p->n && p->s[j] == ' ') j++;
        if (j < p->n && p->s[j] == '{') {
            size_t b = j + 1, e = b;
            while (e < p->n && p->s[e] != '}') e++;
            if (e < p->n) {
                size_t tb = b, te = e;
                trim(p->s, &tb, &te);
                while (tb < te && p->s[tb] == ',') tb++;
                trim(p->s, &tb, &te);
                if ((te - tb == 3 && !strncmp(p->s + tb, "and", 3)) || (te - tb == 2 && !strncmp(p->s + tb, "or", 2)))
                    return 1;
            }
        }
    }
    return 0;
}

static void skip_word_separator(parser *p) {
    if (p->cur.t == T_WORD) {
        next(p);
        return;
    }
    size_t b, e;
    next(p);
    raw_group(p, &b, &e);
}

// ---- lists ----

static int is_rel_list(const mv_node *x) { return x && x->kind == MV_REL; }

static mv_node *make_list(parser *p, mv_node **items, int n, int flags) {
    mv_node *l = mv_new(p->a, MV_LIST, n);
    if (!l) return fail(p);
    memcpy(l->kid, items, sizeof(mv_node *) * (size_t)n);
    l->flags = flags;
    // "x = 1, 2, 3": the solutions of x, an unordered list on the right of one assignment
    if (n >= 2 && is_rel_list(items[0]) && items[0]->n == 2 && items[0]->ops[0] == MV_R_EQ) {
        int rest_plain = 1;
        for (int i = 1; i < n; i++)
            if (items[i]->kind == MV_REL) rest_plain = 0;
        if (rest_plain) {
            mv_node *rhs = mv_new(p->a, MV_LIST, n);
            mv_node *rel = mv_new(p->a, MV_REL, 2);
            if (!rhs || !rel) return fail(p);
            rhs->kid[0] = items[0]->kid[1];
            for (int i = 1; i < n; i++) rhs->kid[i] = items[i];
            rhs->flags = MV_F_UNORDERED;
            rel->kid[0] = items[0]->kid[0];
            rel->kid[1] = rhs;
            rel->ops = items[0]->ops;
            return rel;
        }
    }
    return l;
}

// Items until a closer (not consumed). Single item: returned as is.
static mv_node *parse_list(parser *p) {
    if (++p->depth > MV_MAX_DEPTH) return fail(p);
    mv_node *items[MV_MAX_ELEMS];
    unsigned char semi_after[MV_MAX_ELEMS];  // item i was followed by ';'
    int n = 0, flags = 0, commas = 0, semis = 0, tight_comma = 0;
    for (;;) {
        if (n > 0 && (at_word_separator(p))) {  // "1, 2, and 3"
            flags |= MV_F_UNORDERED;
            skip_word_separator(p);
            continue;
        }
        mv_node *x = parse_rel(p);
        if (!x || p->fail) return fail(p);
        if (n == MV_MAX_ELEMS) return fail(p);
        semi_after[n] = is_char(p, ';');
        items[n++] = x;
        if (is_char(p, ',') || is_char(p, ';')) {
            size_t at = p->cur.pos;
            semis += is_char(p, ';');
            commas -= is_char(p, ';');
            tight_comma = is_char(p, ',') && at > 0 && isdigit((unsigned char)p->s[at - 1]) && at + 1 < p->n &&
                          isdigit((unsigned char)p->s[at + 1]);
            commas++;
            next(p);
            while (is_char(p, ',') || is_char(p, ';')) next(p);
            if (at_word_separator(p)) {
                flags |= MV_F_UNORDERED;
                skip_word_separator(p);
            }
            continue;
        }
        if (at_word_separator(p)) {
            flags |= MV_F_UNORDERED;
            skip_word_separator(p);
            continue;
        }
        break;
    }
    p->depth--;
    if (n == 1) return items[0];
    // "p=5, q=2; p=7, q=2": ';' separates groups of ',' items, each group a tuple
    if (semis > 0 && commas > 0) {
        mv_node *groups[MV_MAX_ELEMS];
        int ng = 0, start = 0;
        for (int i = 0; i < n; i++) {
            if (!semi_after[i] && i + 1 < n) continue;
            int len = i - start + 1;
            mv_node *t = len == 1 ? items[start] : mv_new(p->a, MV_TUPLE, len);
            if (!t) return fail(p);
            if (len > 1) memcpy(t->kid, items + start, sizeof(mv_node *) * (size_t)len);
            groups[ng++] = t;
            start = i + 1;
        }
        return make_list(p, groups, ng, flags | MV_F_UNORDERED);
    }
    if (n == 2 && commas == 1 && tight_comma && items[0]->kind == MV_NUM && items[1]->kind == MV_NUM &&
        !(items[0]->flags & MV_F_FLOAT) && !(items[1]->flags & MV_F_FLOAT))
        flags |= MV_F_DECIMAL_COMMA;
    return make_list(p, items, n, flags);
}

// ---- relations ----

static int relop(parser *p, int *op) {
    if (p->cur.t == T_CHAR) {
        char c = p->cur.s[0];
        char d = p->cur.end < p->n ? p->s[p->cur.end] : 0;
        if (c == '=') {
            if (d == '=') p->pos++;  // ==
            *op = MV_R_EQ;
        } else if (c == '<') {
            if (d == '=') p->pos++;
            *op = d == '=' ? MV_R_LE : MV_R_LT;
        } else if (c == '>') {
            if (d == '=') p->pos++;
            *op = d == '=' ? MV_R_GE : MV_R_GT;
        } else if (c == '!' && d == '=') {
            p->pos++;
            *op = MV_R_NE;
        } else {
            return 0;
        }
        next(p);
        return 1;
    }
    if (p->cur.t != T_CMD) return 0;
    static const struct {
        const char *name;
        int op;
    } ops[] = {{"le", MV_R_LE},     {"leq", MV_R_LE},       {"leqslant", MV_R_LE}, {"ge", MV_R_GE},    {"geq", MV_R_GE},
               {"geqslant", MV_R_GE}, {"lt", MV_R_LT},      {"gt", MV_R_GT},       {"ne", MV_R_NE},    {"neq", MV_R_NE},
               {"approx", MV_R_APPROX}, {"in", MV_R_IN},    {"equiv", MV_R_EQ},    {"simeq", MV_R_APPROX}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (word_is(p->cur.s, p->cur.n, ops[i].name)) {
            *op = ops[i].op;
            next(p);
            return 1;
        }
    return 0;
}

static mv_node *parse_setexpr(parser *p) {
    mv_node *x = parse_expr(p);
    if (!x) return NULL;
    while (is_cmd(p, "cup") || is_cmd(p, "cap") || is_cmd(p, "setminus")) {
        int cup = is_cmd(p, "cup");
        const char *nm = cup ? "cup" : is_cmd(p, "cap") ? "cap" : "setminus";
        next(p);
        mv_node *y = parse_expr(p);
        if (!y) return fail(p);
        if (cup) {
            int nx = x->kind == MV_UNION ? x->n : 1;
            mv_node *u = mv_new(p->a, MV_UNION, nx + 1);
            if (!u) return fail(p);
            if (x->kind == MV_UNION) memcpy(u->kid, x->kid, sizeof(mv_node *) * (size_t)nx);
            else u->kid[0] = x;
            u->kid[nx] = y;
            x = u;
        } else {
            x = mv_new2(p->a, MV_FUNC, x, y);
            if (!x) return fail(p);
            x->str = nm;
        }
    }
    return x;
}

static mv_node *parse_ratio(parser *p) {
    mv_node *x = parse_setexpr(p);
    if (!x) return NULL;
    if (is_char(p, ':')) {
        next(p);
        mv_node *y = parse_setexpr(p);
        if (!y) return fail(p);
        x = mv_new2(p->a, MV_RATIO, x, y);
        if (!x) return fail(p);
    }
    return x;
}

static mv_node *parse_rel(parser *p) {
    mv_node *items[32];
    int ops[31], n = 0, op;
    mv_node *x = parse_ratio(p);
    if (!x) return fail(p);
    items[n++] = x;
    while (relop(p, &op)) {
        if (n == 32) return fail(p);
        mv_node *y = parse_ratio(p);
        if (!y) return fail(p);
        ops[n - 1] = op;
        items[n++] = y;
    }
    if (n == 1) return x;
    mv_node *r = mv_new(p->a, MV_REL, n);
    if (!r) return fail(p);
    memcpy(r->kid, items, sizeof(mv_node *) * (size_t)n);
    r->ops = mv_alloc(p->a, sizeof(int) * (size_t)(n - 1));
    memcpy(r->ops, ops, sizeof(int) * (size_t)(n - 1));
    return r;
}

// ---- arithmetic ----

static mv_node *append(parser *p, mv_kind kind, mv_node *acc, mv_node *y) {
    if (!acc || !y) return fail(p);
    if (acc->kind == kind && !(acc->flags & MV_F_QUOTIENT)) {
        mv_node *r = mv_new(p->a, kind, acc->n + 1);
        if (!r) return fail(p);
        memcpy(r->kid, acc->kid, sizeof(mv_node *) * (size_t)acc->n);
        r->kid[acc->n] = y;
        return r;
    }
    mv_node *r = mv_new2(p->a, kind, acc, y);
    return r ? r : fail(p);
}

static mv_node *parse_expr(parser *p) {
    if (++p->depth > MV_MAX_DEPTH) return fail(p);
    mv_node *x;
    if (is_char(p, '+')) {
        next(p);
        x = parse_term(p, 0);
    } else if (is_char(p, '-')) {
        next(p);
        x = mv_new1(p->a, MV_NEG, parse_term(p, 0));
    } else if (is_cmd(p, "pm") || is_cmd(p, "mp")) {
        next(p);
        x = mv_new1(p->a, MV_PM, parse_term(p, 0));
    } else {
        x = parse_term(p, 0);
    }
    if (!x) return fail(p);
    for (;;) {
        if (is_char(p, '+')) {
            next(p);
            x = append(p, MV_ADD, x, parse_term(p, 0));
        } else if (is_char(p, '-')) {
            next(p);
            x = append(p, MV_ADD, x, mv_new1(p->a, MV_NEG, parse_term(p, 0)));
        } else if (is_cmd(p, "pm") || is_cmd(p, "mp")) {
            next(p);
            x = mv_new2(p->a, MV_PM, x, parse_term(p, 0));
        } else {
            break;
        }
        if (!x) return fail(p);
    }
    p->depth--;
    return x;
}

// Can the current token start a factor of an implicit product ("2x", "3\sqrt2", "(x+1)(x-1)")?
static int starts_factor(parser *p) {
    const tok_t *t = &p->cur;
    switch (t->t) {
    case T_NUM: case T_LETTER: return 1;
    case T_WORD: return !is_word(p, "and") && !is_word(p, "or");
    case T_CHAR: return t->s[0] == '(' || t->s[0] == '{' || (t->s[0] == '|' && !p->in_abs);
    case T_CMD: {
        static const char *const no[] = {"cdot", "times", "div", "pm", "mp", "le", "leq", "ge", "geq", "lt", "gt", "ne",
                                         "neq", "approx", "in", "cup", "cap", "setminus", "end", "%", "}", "\\", "rbrace",
                                         "rangle", "rfloor", "rceil", "equiv", "simeq", "leqslant", "geqslant", ",", ";", "!", "to",
                                         "rightarrow", "Rightarrow", "implies", "quad", "qquad", "rvert"};
        for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
            if (word_is(t->s, t->n, no[i])) return 0;
        if (at_word_separator(p)) return 0;
        return 1;
    }
    default: return 0;
    }
}

static int is_int_num(const mv_node *x) { return x && x->kind == MV_NUM && !(x->flags & (MV_F_FLOAT | MV_F_SCI)); }

static mv_node *parse_term(parser *p, int implicit_only) {
    if (++p->depth > MV_MAX_DEPTH) return fail(p);
    mv_node *x = parse_unary(p);
    if (!x) return fail(p);
    int nfactors = 1;
    for (;;) {
        if (!implicit_only && (is_char(p, '*') || is_cmd(p, "cdot") || is_cmd(p, "times"))) {
            next(p);
            x = append(p, MV_MUL, x, parse_unary(p));
        } else if (!implicit_only && (is_char(p, '/') || is_cmd(p, "div"))) {
            next(p);
            mv_node *d = mv_new2(p->a, MV_DIV, x, parse_unary(p));
            if (!d) return fail(p);
            d->flags |= MV_F_QUOTIENT;
            x = d;
        } else if (starts_factor(p)) {
            if (implicit_only && p->cur.t == T_CMD && (word_is(p->cur.s, p->cur.n, "sin") || word_is(p->cur.s, p->cur.n, "cos") ||
                                                     word_is(p->cur.s, p->cur.n, "tan") || word_is(p->cur.s, p->cur.n, "log") ||
                                                     word_is(p->cur.s, p->cur.n, "ln") || word_is(p->cur.s, p->cur.n, "sec") ||
                                                     word_is(p->cur.s, p->cur.n, "csc") || word_is(p->cur.s, p->cur.n, "cot") ||
                                                     word_is(p->cur.s, p->cur.n, "exp")))
                break;  // \sin x \cos x = sin(x) cos(x)
            int frac_next = is_cmd(p, "frac");
            mv_node *y = parse_unary(p);
            if (!y) return fail(p);
            // mixed number: 2\frac{1}{2} = 5/2
            if (frac_next && nfactors == 1 && is_int_num(x) && y->kind == MV_DIV && is_int_num(y->kid[0]) && is_int_num(y->kid[1]))
                x = mv_new2(p->a, MV_ADD, x, y);
            else
                x = append(p, MV_MUL, x, y);
        } else {
            break;
        }
        if (!x) return fail(p);
        nfactors++;
    }
    p->depth--;
    return x;
}

static mv_node *parse_unary(parser *p) {
    if (++p->depth > MV_MAX_DEPTH) return fail(p);
    mv_node *x;
    if (is_char(p, '-')) {
        next(p);
        x = mv_new1(p->a, MV_NEG, parse_unary(p));
    } else if (is_char(p, '+')) {
        next(p);
        x = parse_unary(p);
    } else {
        x = parse_power(p);
    }
    p->depth--;
    return x ? x : fail(p);
}

// The argument of ^ or _ or of a malformed \frac/\sqrt: a group, or one token.
static mv_node *parse_script(parser *p, int single_digit) {
    if (is_char(p, '{')) {
        size_t b, e;
        if (!raw_group(p, &b, &e)) return fail(p);
        return parse_sub(p, b, e);
    }
    if (is_char(p, '-')) {
        next(p);
        return mv_new1(p->a, MV_NEG, parse_script(p, single_digit));
    }
    if (p->cur.t == T_NUM && single_digit && p->cur.n > 1) {  // \frac12: one digit each
        mv_node *x = mv_new(p->a, MV_NUM, 0);
        if (!x) return fail(p);
        x->str = mv_strndup(p->a, p->cur.s, 1);
        p->pos = p->cur.pos + 1;
        next(p);
        return x;
    }
    if (p->cur.t == T_NUM || p->cur.t == T_LETTER || p->cur.t == T_CMD || is_char(p, '(')) return parse_primary(p);
    return fail(p);
}

static mv_node *parse_power(parser *p) {
    mv_node *x = parse_primary(p);
    if (!x) return fail(p);
    for (;;) {
        if (is_char(p, '!')) {
            char d = p->cur.end < p->n ? p->s[p->cur.end] : 0;
            if (d == '=') break;
            next(p);
            x = mv_new1(p->a, MV_FACT, x);
        } else if (is_cmd(p, "degree")) {  // normalize.c writes degree marks of trig answers so
            next(p);
            if (p->in_trig) {  // \sin 30^\circ = \sin(30 pi / 180)
                mv_node *pi = constant(p, "pi");
                x = mv_new2(p->a, MV_MUL, x, mv_new2(p->a, MV_DIV, pi, mv_num_int(p->a, 180)));
            }
        } else if (is_cmd(p, "%")) {
            next(p);
            x = mv_new1(p->a, MV_PERCENT, x);
        } else if (is_char(p, '\'')) {
            next(p);
            x = mv_new1(p->a, MV_UFUNC, x);
            if (x) x->str = "prime";
        } else if (is_char(p, '^')) {
            next(p);
            mv_node *e = parse_script(p, 0);
            x = mv_new2(p->a, MV_POW, x, e);
        } else {
            break;
        }
        if (!x) return fail(p);
    }
    return x;
}

// ---- primaries ----

static mv_node *sym(parser *p, const char *name, size_t n) {
    mv_node *x = mv_new(p->a, MV_SYM, 0);
    if (!x) return fail(p);
    x->str = mv_strndup(p->a, name, n);
    return x;
}

static mv_node *constant(parser *p, const char *name) {
    mv_node *x = mv_new(p->a, MV_CONST, 0);
    if (!x) return fail(p);
    x->str = name;
    return x;
}

static mv_node *func(parser *p, const char *name, mv_node *arg) {
    mv_node *x = mv_new1(p->a, MV_FUNC, arg);
    if (!x) return fail(p);
    x->str = name;
    return x;
}

// Closing bracket check for ( [ ] -> interval / tuple / group.
static mv_node *parse_bracketed(parser *p, char open) {
    next(p);
    int save_abs = p->in_abs;
    p->in_abs = 0;
    mv_node *x = parse_list(p);
    p->in_abs = save_abs;
    if (!x) return fail(p);
    char close = is_char(p, ')') ? ')' : is_char(p, ']') ? ']' : is_char(p, '[') ? '[' : 0;
    if (!close) return fail(p);
    next(p);
    int n = x->kind == MV_LIST ? x->n : 1;
    if (n == 1) {
        if (open == '(' && close == ')') return x;
        if (open == '[' && close == ']') return x;
        return fail(p);
    }
    if (n == 2 && !(open == '(' && close == ')')) {
        mv_node *iv = mv_new2(p->a, MV_INTERVAL, x->kid[0], x->kid[1]);
        if (!iv) return fail(p);
        if (open == '(' || open == ']') iv->flags |= MV_F_LOPEN;
        if (close == ')' || close == '[') iv->flags |= MV_F_ROPEN;
        return iv;
    }
    if (close != ')' && close != ']') return fail(p);
    mv_node *t = mv_new(p->a, MV_TUPLE, n);
    if (!t) return fail(p);
    memcpy(t->kid, x->kid, sizeof(mv_node *) * (size_t)n);
    if (n == 2 && open == '(') t->flags |= MV_F_MAYBE_INTERVAL;
    return t;
}

// Function argument: (..), {..}, or an implicit product ("\sin 2x").
static mv_node *parse_fn_arg(parser *p) {
    if (is_char(p, '(')) return parse_bracketed(p, '(');
    if (is_char(p, '{')) {
        size_t b, e;
        if (!raw_group(p, &b, &e)) return fail(p);
        return parse_sub(p, b, e);
    }
    return parse_term(p, 1);
}

static const char *const kFuncs[] = {"sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh",
                                     "cosh", "tanh", "log", "ln", "lg", "exp", "sqrt", "det", "gcd", "max", "min", "lcm",
                                     "arcsec", "arccsc", "arccot", "operatorname"};

static const char *func_name(const char *s, size_t n) {
    for (size_t i = 0; i < sizeof kFuncs / sizeof kFuncs[0]; i++)
        if (word_is(s, n, kFuncs[i])) return kFuncs[i];
    return NULL;
}

static mv_node *parse_function(parser *p, const char *name) {
    mv_node *power = NULL, *base = NULL;
    for (int k = 0; k < 2; k++) {
        if (is_char(p, '^') && !power) {
            next(p);
            power = parse_script(p, 0);
            if (!power) return fail(p);
        } else if (is_char(p, '_') && !base) {
            next(p);
            base = parse_script(p, 0);
            if (!base) return fail(p);
        }
    }
    int trig = !strcmp(name, "sin") || !strcmp(name, "cos") || !strcmp(name, "tan") || !strcmp(name, "sec") ||
               !strcmp(name, "csc") || !strcmp(name, "cot");
    p->in_trig += trig;
    mv_node *arg = parse_fn_arg(p);
    p->in_trig -= trig;
    if (!arg) return fail(p);
    // \sin^{-1} x is arcsin x
    if (power && power->kind == MV_NEG && power->kid[0]->kind == MV_NUM && !strcmp(power->kid[0]->str, "1")) {
        static const char *const inv[][2] = {{"sin", "arcsin"}, {"cos", "arccos"}, {"tan", "arctan"}};
        for (int i = 0; i < 3; i++)
            if (!strcmp(name, inv[i][0])) {
                name = inv[i][1];
                power = NULL;
            }
    }
    mv_node *x;
    if (arg->kind == MV_LIST) {  // \max(a, b), \gcd(a, b)
        x = mv_new(p->a, MV_FUNC, arg->n);
        if (!x) return fail(p);
        memcpy(x->kid, arg->kid, sizeof(mv_node *) * (size_t)arg->n);
        x->str = name;
    } else if (arg->kind == MV_TUPLE) {
        x = mv_new(p->a, MV_FUNC, arg->n);
        if (!x) return fail(p);
        memcpy(x->kid, arg->kid, sizeof(mv_node *) * (size_t)arg->n);
        x->str = name;
    } else if (base && (!strcmp(name, "log"))) {
        x = mv_new2(p->a, MV_FUNC, arg, base);
        if (!x) return fail(p);
        x->str = name;
    } else {
        x = func(p, name, arg);
    }
    if (x && power) x = mv_new2(p->a, MV_POW, x, power);
    return x ? x : fail(p);
}

static mv_node *parse_matrix(parser *p, const char *env, size_t envn) {
    // \begin{array}{cc}: skip the column spec
    if (word_is(env, envn, "array") && is_char(p, '{')) {
        size_t b, e;
        if (!raw_group(p, &b, &e)) return fail(p);
    }
    mv_node *cells[MV_MAX_ELEMS];
    int n = 0, rows = 0, cols = -1, c = 0;
    for (;;) {
        if (is_cmd(p, "end")) break;
        if (p->cur.t == T_END) return fail(p);
        mv_node *x = parse_rel(p);
        if (!x || n == MV_MAX_ELEMS) return fail(p);
        cells[n++] = x;
        c++;
        if (is_char(p, '&')) {
            next(p);
            continue;
        }
        if (is_cmd(p, "\\") || is_cmd(p, "cr")) {
            next(p);
            if (cols >= 0 && c != cols) return fail(p);
            cols = c;
            c = 0;
            rows++;
            if (is_cmd(p, "end")) break;
            continue;
        }
        if (is_cmd(p, "end")) {
            if (cols >= 0 && c != cols) return fail(p);
            cols = c;
            c = 0;
            rows++;
            break;
        }
        return fail(p);
    }
    next(p);  // \end
    size_t b, e;
    if (!raw_group(p, &b, &e)) return fail(p);
    if (rows == 0 || cols <= 0) return fail(p);
    mv_node *m = mv_new(p->a, MV_MATRIX, n);
    if (!m) return fail(p);
    memcpy(m->kid, cells, sizeof(mv_node *) * (size_t)n);
    m->rows = rows;
    m->cols = cols;
    return m;
}

// \sum_{k=a}^{b} body
static mv_node *parse_sum(parser *p, const char *kind) {
    mv_node *var = NULL, *lo = NULL, *hi = NULL;
    for (int k = 0; k < 2; k++) {
        if (is_char(p, '_')) {
            next(p);
            mv_node *s = parse_script(p, 0);
            if (!s || s->kind != MV_REL || s->n != 2 || s->ops[0] != MV_R_EQ || s->kid[0]->kind != MV_SYM) return fail(p);
            var = s->kid[0];
            lo = s->kid[1];
        } else if (is_char(p, '^')) {
            next(p);
            hi = parse_script(p, 0);
        }
    }
    if (!var || !lo || !hi) return fail(p);
    mv_node *body = parse_term(p, 0);
    if (!body) return fail(p);
    mv_node *x = mv_new(p->a, MV_SUM, 4);
    if (!x) return fail(p);
    x->kid[0] = var;
    x->kid[1] = lo;
    x->kid[2] = hi;
    x->kid[3] = body;
    x->str = kind;
    return x;
}

static const char *const kGreek[] = {"alpha", "beta", "gamma", "delta", "epsilon", "varepsilon", "zeta", "eta", "theta",
                                     "vartheta", "iota", "kappa", "lambda", "mu", "nu", "xi", "rho", "sigma", "tau",
                                     "upsilon", "phi", "varphi", "chi", "psi", "omega", "Gamma", "Delta", "Theta",
                                     "Lambda", "Xi", "Sigma", "Phi", "Psi", "Omega", "ell"};

// A letter with its subscript and prime: x, x_1, a_{n}, S_{MBCN}; F_{n-1} is F_ applied to n-1.
static mv_node *parse_symbol(parser *p, const char *name, size_t n) {
    char buf[96];
    if (n > 40) return fail(p);
    memcpy(buf, name, n);
    buf[n] = 0;
    while (is_char(p, '\'')) {  // f'(x)
        if (strlen(buf) + 1 >= sizeof buf) return fail(p);
        strcat(buf, "'");
        next(p);
    }
    if (is_char(p, '_')) {
        next(p);
        size_t b = 0, e = 0;
        int simple = 0;
        if (is_char(p, '{')) {
            size_t save = p->pos;
            tok_t save_tok = p->cur;
            if (!raw_group(p, &b, &e)) return fail(p);
            simple = e > b && e - b < 40;
            for (size_t i = b; i < e && simple; i++)
                if (!isalnum((unsigned char)p->s[i])) simple = 0;
            if (!simple) {  // re-parse the group as an expression
                p->pos = save;
                p->cur = save_tok;
            }
        } else if (p->cur.t == T_NUM || p->cur.t == T_LETTER) {
            b = p->cur.pos;
            e = p->cur.end;
            simple = 1;
            next(p);
        }
        if (simple) {
            size_t len = strlen(buf);
            if (len + 1 + (e - b) >= sizeof buf) return fail(p);
            buf[len] = '_';
            memcpy(buf + len + 1, p->s + b, e - b);
            buf[len + 1 + (e - b)] = 0;
        } else {
            mv_node *sub = parse_script(p, 0);
            if (!sub) return fail(p);
            mv_node *u = mv_new1(p->a, MV_UFUNC, sub);
            if (!u) return fail(p);
            strcat(buf, "_");
            u->str = mv_strndup(p->a, buf, strlen(buf));
            return u;
        }
    }
    // f(x), g(x, y): undefined functions (only for letters that name functions by habit)
    if (is_char(p, '(') && p->cur.pos > 0 && p->s[p->cur.pos - 1] != ' ' && strchr("fghFGHPQ", buf[0]) &&
        (buf[1] == 0 || buf[1] == '_' || buf[1] == '\'')) {
        mv_node *arg = parse_bracketed(p, '(');
        if (!arg) return fail(p);
        int na = (arg->kind == MV_TUPLE) ? arg->n : 1;
        mv_node *u = mv_new(p->a, MV_UFUNC, na);
        if (!u) return fail(p);
        if (arg->kind == MV_TUPLE) memcpy(u->kid, arg->kid, sizeof(mv_node *) * (size_t)na);
        else u->kid[0] = arg;
        u->str = mv_strndup(p->a, buf, strlen(buf));
        return u;
    }
    if (!strcmp(buf, "e")) return constant(p, "e");
    if (!strcmp(buf, "i")) return constant(p, "i");
    return sym(p, buf, strlen(buf));
}

static mv_node *parse_text(parser *p) {
    const char *cmd = p->cur.s;
    size_t cmdn = p->cur.n;
    next(p);
    size_t b, e;
    if (!raw_group(p, &b, &e)) return fail(p);
    trim(p->s, &b, &e);
    if (word_is(cmd, cmdn, "operatorname")) {
        const char *fn = func_name(p->s + b, e - b);
        char *nm = mv_strndup(p->a, p->s + b, e - b);
        return parse_function(p, fn ? fn : nm);
    }
    if (b == e) return starts_factor(p) ? parse_power(p) : sym(p, "", 0);
    // \mathrm{e}, \mathrm{i}, \mathbf{x}: the letter itself
    if (e - b == 1 && isalpha((unsigned char)p->s[b]) && !word_is(cmd, cmdn, "text") && !word_is(cmd, cmdn, "textbf") &&
        !word_is(cmd, cmdn, "textnormal") && !word_is(cmd, cmdn, "mbox"))
        return parse_symbol(p, p->s + b, 1);
    int letters = 0, other = 0;
    for (size_t i = b; i < e; i++) {
        if (isalpha((unsigned char)p->s[i])) letters++;
        else if (!isspace((unsigned char)p->s[i]) && p->s[i] != '(' && p->s[i] != ')' && p->s[i] != '.' && p->s[i] != ',' &&
                 p->s[i] != '\'' && p->s[i] != '-')
            other++;
    }
    if (letters == 0 || other > 0) {  // \text{5}, \text{(x+1)}: math inside
        mv_node *x = parse_sub(p, b, e);
        if (x) return x;
    }
    mv_node *t = mv_new(p->a, MV_TEXT, 0);
    if (!t) return fail(p);
    t->str = mv_strndup(p->a, p->s + b, e - b);
    return t;
}

static mv_node *parse_command(parser *p) {
    const char *nm = p->cur.s;
    size_t n = p->cur.n;
    if (word_is(nm, n, "frac") || word_is(nm, n, "over")) {
        next(p);
        mv_node *a = parse_script(p, 1);
        if (!a) return fail(p);
        mv_node *b = parse_script(p, 1);
        if (!b) return fail(p);
        mv_node *x = mv_new2(p->a, MV_DIV, a, b);
        if (x) x->flags |= MV_F_QUOTIENT;
        return x ? x : fail(p);
    }
    if (word_is(nm, n, "sqrt")) {
        next(p);
        mv_node *idx = NULL;
        if (is_char(p, '[')) {
            size_t b = p->cur.end, e = b;
            while (e < p->n && p->s[e] != ']') e++;
            if (e >= p->n) return fail(p);
            idx = parse_sub(p, b, e);
            if (!idx) return fail(p);
            p->pos = e + 1;
            next(p);
        }
        mv_node *x = parse_script(p, 1);
        if (!x) return fail(p);
        return idx ? mv_new2(p->a, MV_ROOT, idx, x) : func(p, "sqrt", x);
    }
    if (word_is(nm, n, "binom") || word_is(nm, n, "choose")) {
        next(p);
        mv_node *a = parse_script(p, 1), *b = a ? parse_script(p, 1) : NULL;
        mv_node *x = mv_new2(p->a, MV_BINOM, a, b);
        return x ? x : fail(p);
    }
    if (word_is(nm, n, "boxed") || word_is(nm, n, "fbox") || word_is(nm, n, "underline")) {
        next(p);
        return parse_script(p, 0);
    }
    if (text_cmd(&p->cur)) return parse_text(p);
    const char *fn = func_name(nm, n);
    if (fn) {
        next(p);
        return parse_function(p, fn);
    }
    if (word_is(nm, n, "pi")) {
        next(p);
        return constant(p, "pi");
    }
    if (word_is(nm, n, "infty") || word_is(nm, n, "inf") || word_is(nm, n, "infin")) {
        next(p);
        return or_fail(p, mv_new(p->a, MV_INF, 0));
    }
    if (word_is(nm, n, "emptyset") || word_is(nm, n, "varnothing")) {
        next(p);
        return or_fail(p, mv_new(p->a, MV_EMPTYSET, 0));
    }
    if (word_is(nm, n, "imath")) {
        next(p);
        return constant(p, "i");
    }
    if (word_is(nm, n, "ldots") || word_is(nm, n, "cdots") || word_is(nm, n, "dots")) {
        next(p);
        return or_fail(p, mv_new(p->a, MV_DOTS, 0));
    }
    if (word_is(nm, n, "{") || word_is(nm, n, "lbrace")) {
        next(p);
        if (is_cmd(p, "}") || is_cmd(p, "rbrace")) {
            next(p);
            return or_fail(p, mv_new(p->a, MV_EMPTYSET, 0));
        }
        mv_node *x = parse_list(p);
        if (!x || !(is_cmd(p, "}") || is_cmd(p, "rbrace"))) return fail(p);
        next(p);
        int k = x->kind == MV_LIST ? x->n : 1;
        mv_node *s = mv_new(p->a, MV_SET, k);
        if (!s) return fail(p);
        if (x->kind == MV_LIST) memcpy(s->kid, x->kid, sizeof(mv_node *) * (size_t)k);
        else s->kid[0] = x;
        return s;
    }
    if (word_is(nm, n, "langle")) {
        next(p);
        mv_node *x = parse_list(p);
        if (!x || !is_cmd(p, "rangle")) return fail(p);
        next(p);
        int k = x->kind == MV_LIST ? x->n : 1;
        mv_node *t = mv_new(p->a, MV_TUPLE, k);
        if (!t) return fail(p);
        if (x->kind == MV_LIST) memcpy(t->kid, x->kid, sizeof(mv_node *) * (size_t)k);
        else t->kid[0] = x;
        return t;
    }
    if (word_is(nm, n, "lfloor") || word_is(nm, n, "lceil")) {
        int floor = word_is(nm, n, "lfloor");
        next(p);
        mv_node *x = parse_expr(p);
        if (!x || !(is_cmd(p, floor ? "rfloor" : "rceil"))) return fail(p);
        next(p);
        return func(p, floor ? "floor" : "ceil", x);
    }
    if (word_is(nm, n, "lvert") || word_is(nm, n, "vert") || word_is(nm, n, "|")) {
        next(p);
        mv_node *x = parse_expr(p);
        if (!x || !(is_cmd(p, "rvert") || is_cmd(p, "vert") || is_cmd(p, "|"))) return fail(p);
        next(p);
        return or_fail(p, mv_new1(p->a, MV_ABS, x));
    }
    if (word_is(nm, n, "begin")) {
        next(p);
        size_t b, e;
        if (!raw_group(p, &b, &e)) return fail(p);
        const char *env = p->s + b;
        size_t envn = e - b;
        if (envn > 0 && env[envn - 1] == '*') envn--;
        if (word_is(env, envn, "pmatrix") || word_is(env, envn, "bmatrix") || word_is(env, envn, "matrix") ||
            word_is(env, envn, "Bmatrix") || word_is(env, envn, "smallmatrix") || word_is(env, envn, "array") ||
            word_is(env, envn, "vmatrix")) {
            mv_node *m = parse_matrix(p, env, envn);
            if (m && word_is(env, envn, "vmatrix")) m = func(p, "det", m);
            return m;
        }
        return fail(p);
    }
    if (word_is(nm, n, "sum") || word_is(nm, n, "prod")) {
        const char *kind = word_is(nm, n, "sum") ? "sum" : "prod";
        next(p);
        return parse_sum(p, kind);
    }
    if (word_is(nm, n, "overline") || word_is(nm, n, "vec") || word_is(nm, n, "hat") || word_is(nm, n, "bar") ||
        word_is(nm, n, "tilde") || word_is(nm, n, "widehat") || word_is(nm, n, "overrightarrow") || word_is(nm, n, "angle")) {
        const char *w = mv_strndup(p->a, nm, n);
        next(p);
        mv_node *x = parse_script(p, 0);
        mv_node *u = mv_new1(p->a, MV_UFUNC, x);
        if (!u) return fail(p);
        u->str = w;
        return u;
    }
    for (size_t i = 0; i < sizeof kGreek / sizeof kGreek[0]; i++)
        if (word_is(nm, n, kGreek[i])) {
            next(p);
            return parse_symbol(p, kGreek[i], strlen(kGreek[i]));
        }
    if (word_is(nm, n, "lim") || word_is(nm, n, "int") || word_is(nm, n, "end") || n == 0 || !isalpha((unsigned char)nm[0]))
        return fail(p);
    // an unknown command names a symbol (\zzz)
    char *name = mv_strndup(p->a, nm, n);
    next(p);
    return parse_symbol(p, name, n);
}

// A repeating decimal, the current token being \overline or \bar after the literal lit[0..n) ("0.1",
// "0."): 0.1\overline{6} = (16 - 1) / 90, an exact quotient. Up to 40 digits each side.
static mv_node *parse_repeating(parser *p, const char *lit, size_t n) {
    next(p);
    size_t b, e;
    if (is_char(p, '{')) {
        if (!raw_group(p, &b, &e)) return fail(p);
        trim(p->s, &b, &e);
    } else if (p->cur.t == T_NUM) {
        b = p->cur.pos;
        e = p->cur.end;
        next(p);
    } else {
        return fail(p);
    }
    char head[48], all[96];
    size_t nh = 0, k = 0, nr = e - b;
    for (size_t i = 0; i < n; i++) {
        if (lit[i] == '.') k = 0;
        else if (nh < 40) head[nh++] = lit[i], k++;
        else return fail(p);
    }
    if (nr == 0 || nr > 40 || nh == 0) return fail(p);
    for (size_t i = b; i < e; i++)
        if (!isdigit((unsigned char)p->s[i])) return fail(p);
    memcpy(all, head, nh);
    memcpy(all + nh, p->s + b, nr);
    all[nh + nr] = head[nh] = 0;
    // value = (head.rep digits - head digits) / (10^k (10^len(rep) - 1))
    mpz_t num, sub;
    mpz_init_set_str(num, all, 10);
    mpz_init_set_str(sub, head, 10);
    mpz_sub(num, num, sub);
    char ns[100];
    mpz_get_str(ns, 10, num);  // at most 81 digits
    mpz_clear(num);
    mpz_clear(sub);
    char den[96];
    memset(den, '9', nr);
    memset(den + nr, '0', k);
    den[nr + k] = 0;
    mv_node *a = mv_new(p->a, MV_NUM, 0), *d = mv_new(p->a, MV_NUM, 0);
    if (!a || !d) return fail(p);
    a->str = mv_strndup(p->a, ns, strlen(ns));
    d->str = mv_strndup(p->a, den, strlen(den));
    mv_node *q = mv_new2(p->a, MV_DIV, a, d);
    if (!q) return fail(p);
    q->flags |= MV_F_QUOTIENT;
    return q;
}

static mv_node *parse_primary(parser *p) {
    if (++p->depth > MV_MAX_DEPTH) return fail(p);
    mv_node *x = NULL;
    tok_t t = p->cur;
    switch (t.t) {
    case T_NUM: {
        if (memchr(t.s, '.', t.n) && !memchr(t.s, 'e', t.n) && !memchr(t.s, 'E', t.n) && p->cur.end + 1 < p->n &&
            p->s[p->cur.end] == '\\' && repeat_cmd(p->s + p->cur.end + 1, p->n - p->cur.end - 1)) {
            next(p);
            x = parse_repeating(p, t.s, t.n);
            if (!x) return fail(p);
            break;
        }
        x = mv_new(p->a, MV_NUM, 0);
        if (!x) return fail(p);
        char *d = mv_strndup(p->a, t.s, t.n);
        size_t len = t.n;
        if (len > 1 && d[len - 1] == '.') d[--len] = 0;
        const char *dot = strchr(d, '.');
        const char *ex = strpbrk(d, "eE");
        if (ex) x->flags |= MV_F_SCI;
        if (dot) {
            x->flags |= MV_F_FLOAT;
            x->ndec = (int)((ex ? (size_t)(ex - dot) : strlen(dot)) - 1);
        }
        x->str = d;
        next(p);
        if (is_char(p, '_') && !(x->flags & MV_F_FLOAT)) {  // 204_5: a numeral in base 5, compared as written
            next(p);
            mv_node *base = parse_script(p, 0);
            if (!base || base->kind != MV_NUM) return fail(p);
            char buf[96];
            snprintf(buf, sizeof buf, "%s_%s", d, base->str);
            x = mv_new(p->a, MV_SYM, 0);
            if (!x) return fail(p);
            x->str = mv_strndup(p->a, buf, strlen(buf));
        }
        break;
    }
    case T_LETTER:
        next(p);
        x = parse_symbol(p, t.s, 1);
        break;
    case T_WORD:
        if (word_is(t.s, t.n, "pi")) {
            next(p);
            x = constant(p, "pi");
        } else if (word_is(t.s, t.n, "inf") || word_is(t.s, t.n, "infinity")) {
            next(p);
            x = mv_new(p->a, MV_INF, 0);
        } else if (word_is(t.s, t.n, "and") || word_is(t.s, t.n, "or")) {
            return fail(p);
        } else {
            next(p);
            x = parse_function(p, func_name(t.s, t.n));
        }
        break;
    case T_CMD:
        x = parse_command(p);
        break;
    case T_CHAR: {
        char c = t.s[0];
        if (c == '(' || c == '[' || c == ']') {
            x = parse_bracketed(p, c);
        } else if (c == '{') {
            size_t b, e;
            if (!raw_group(p, &b, &e)) return fail(p);
            if (e == b) return fail(p);
            x = parse_sub(p, b, e);
        } else if (c == '|' && !p->in_abs) {
            next(p);
            p->in_abs++;
            mv_node *y = parse_expr(p);
            p->in_abs--;
            if (!y || !is_char(p, '|')) return fail(p);
            next(p);
            x = mv_new1(p->a, MV_ABS, y);
        } else {
            return fail(p);
        }
        break;
    }
    default: return fail(p);
    }
    p->depth--;
    return x ? x : fail(p);
}

mv_node *mv_parse(mv_arena *a, const char *s) {
    parser p = {.s = s, .n = strlen(s), .pos = 0, .a = a};
    next(&p);
    if (p.cur.t == T_END) return NULL;
    mv_node *x = parse_list(&p);
    if (p.fail || a->overflow || p.cur.t != T_END) return NULL;
    return x;
}
