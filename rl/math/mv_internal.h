// rl/math/mv_internal.h — shared internals of the math checker: the node arena, the expression tree,
// and the functions each stage exports to the next (strings are built in base/buf.h buffers).
// defines: mv_arena, mv_node, MV_* kinds and limits, stage entry points
#ifndef CISPO_RL_MATH_MV_INTERNAL_H
#define CISPO_RL_MATH_MV_INTERNAL_H

#include <stddef.h>

#include "base/buf.h"

// ---- limits: every stage is bounded so a hostile answer gets "wrong" quickly ----
#define MV_MAX_ANSWER 4096      // bytes of an extracted answer that we parse
#define MV_MAX_NODES 4096       // tree nodes per parsed answer
#define MV_MAX_DEPTH 96         // parser recursion depth
#define MV_MAX_EXACT_BITS 65536 // larger exact intermediates fall back to MPFR
#define MV_MAX_POW_EXP 4096     // |integer exponent| evaluated exactly
#define MV_MAX_FACT 3000        // n! evaluated exactly up to this n
#define MV_MAX_SUM_TERMS 2000   // \sum with more terms is compared structurally only
#define MV_MAX_ELEMS 256        // elements of a list/set compared pairwise
#define MV_WORK_BUDGET 40000    // evaluation node visits per verdict (all points, all comparisons)

// ---- expression tree ----
typedef enum {
    MV_NUM,       // str = digits with optional '.', ndec = digits after '.', flags MV_F_FLOAT
    MV_SYM,       // str = name ("x", "alpha", "x_1")
    MV_CONST,     // str = "pi" | "e" | "i"
    MV_INF,       // infinity (sign through MV_NEG)
    MV_ADD,       // kid[0..n)
    MV_MUL,       // kid[0..n)
    MV_NEG,       // -kid[0]
    MV_DIV,       // kid[0] / kid[1]
    MV_POW,       // kid[0] ^ kid[1]
    MV_FUNC,      // str = function name, kid = args (log: kid[1] = base when n == 2)
    MV_UFUNC,     // undefined function str applied to kid (f(x), F_{n-1})
    MV_FACT,      // kid[0]!
    MV_ABS,       // |kid[0]|
    MV_ROOT,      // kid[0]-th root of kid[1]
    MV_BINOM,     // binom(kid[0], kid[1])
    MV_PM,        // kid[0] +- kid[1]  (n == 1: +-kid[0])
    MV_PERCENT,   // kid[0] %
    MV_SUM,       // sum / prod: str = "sum"|"prod", kid = {var (MV_SYM), lo, hi, body}
    MV_REL,       // chain kid[0] op[0] kid[1] op[1] ... ; ops MV_R_*
    MV_TUPLE,     // (a, b, ...): ordered; MV_F_MAYBE_INTERVAL when it is (a, b)
    MV_LIST,      // a, b, ...: bare list; MV_F_UNORDERED for "1 and 2", solution lists
    MV_SET,       // \{a, b\}
    MV_INTERVAL,  // kid[0], kid[1]; MV_F_LOPEN, MV_F_ROPEN
    MV_UNION,     // kid = sets/intervals
    MV_MATRIX,    // rows x cols, kid row-major
    MV_TEXT,      // str = text (\text{odd}, letters)
    MV_RATIO,     // kid[0] : kid[1]
    MV_DOTS,      // \ldots
    MV_EMPTYSET,
} mv_kind;

enum {
    MV_F_FLOAT = 1,           // NUM: written with a decimal point
    MV_F_MAYBE_INTERVAL = 2,  // TUPLE (a, b)
    MV_F_UNORDERED = 4,       // LIST
    MV_F_LOPEN = 8,           // INTERVAL
    MV_F_ROPEN = 16,          // INTERVAL
    MV_F_DECIMAL_COMMA = 32,  // LIST "12,5" that may be the decimal 12.5
    MV_F_SCI = 64,            // NUM written in scientific notation
    MV_F_QUOTIENT = 128,      // DIV written as \frac or a/b: a finished factor, not a mixed-number part
};

enum { MV_R_EQ, MV_R_LT, MV_R_LE, MV_R_GT, MV_R_GE, MV_R_NE, MV_R_APPROX, MV_R_IN };

typedef struct mv_node {
    mv_kind kind;
    int flags;
    int n;                  // number of kids
    int rows, cols;         // MATRIX
    int ndec;               // NUM: digits after the decimal point
    const char *str;        // NUM digits / SYM name / FUNC name / TEXT (arena-owned)
    struct mv_node **kid;   // (n)
    int *ops;               // REL: (n - 1)
} mv_node;

// Bump allocator for one verdict; everything is freed at once.
typedef struct mv_arena_block mv_arena_block;
typedef struct {
    mv_arena_block *head;
    int nodes;              // nodes allocated so far (bounded by MV_MAX_NODES)
    int overflow;           // 1 when a limit was hit: the parse is abandoned
} mv_arena;
void mv_arena_init(mv_arena *a);
void mv_arena_free(mv_arena *a);
void *mv_alloc(mv_arena *a, size_t n);
char *mv_strndup(mv_arena *a, const char *s, size_t n);
mv_node *mv_new(mv_arena *a, mv_kind kind, int n);  // NULL when the node budget is spent
mv_node *mv_new2(mv_arena *a, mv_kind kind, mv_node *x, mv_node *y);
mv_node *mv_new1(mv_arena *a, mv_kind kind, mv_node *x);
mv_node *mv_num_int(mv_arena *a, long v);

// ---- stages ----
// unicode.c: UTF-8 -> ASCII LaTeX (½ -> \frac{1}{2}, − -> -, ≤ -> \le, ² -> ^{2}, fullwidth -> ASCII)
void mv_unicode_to_latex(const char *s, size_t n, buf_t *out);

// extract.c: answer candidates. A response has MV_EXTRACT_LEVELS kinds of candidate (boxes, answer
// phrase, whole short answer, last span, last number); mv_extract_order gives the order to try them
// for this response (once per verdict), and mv_extract_response appends the candidate of one kind
// NUL-terminated to *out: 1, or 0 when there is none of that kind (-1: no such kind). Kinds are
// computed on demand so a response whose box parses never pays for the later scans. Gold strings:
// mv_extract_gold appends every candidate ('\0'-separated) and returns the count.
// All three take the region of the response given by mv_extract_region.
#define MV_EXTRACT_LEVELS 5
#define MV_MAX_TAIL (256 * 1024)  // bytes at the end of a response that extraction reads
enum { MV_X_BOX, MV_X_PHRASE, MV_X_WHOLE, MV_X_SPAN, MV_X_NUMBER };
size_t mv_extract_region(const char *resp, size_t n);  // start offset of the part to read
void mv_extract_order(const char *s, size_t n, int order[MV_EXTRACT_LEVELS]);
int mv_extract_response(const char *s, size_t n, int kind, buf_t *out);
int mv_extract_gold(const char *gold, size_t n, buf_t *out);
// The last multiple-choice letter named in a response ("(B)", "option B", "answer is B"); 0 if none.
char mv_extract_choice(const char *resp, size_t n);

// normalize.c: string-level cleanups of one extracted answer (in place into out). unit (may be
// NULL) receives the canonical unit the answer ended with and normalisation dropped ("m" for
// "5 meters", "cm^2", "deg" for a degree mark), "" when none.
#define MV_UNIT_CAP 16
void mv_normalize(const char *s, size_t n, buf_t *out, char unit[MV_UNIT_CAP]);
// The canonical unit a name spells ("meters" -> "m", "hr" -> "h"); 0 when not a known unit.
int mv_unit_canon(const char *name, char unit[MV_UNIT_CAP]);
int mv_is_known_command(const char *name, size_t n);

// parse.c: LaTeX answer -> tree; NULL when it does not parse (or hits a limit).
mv_node *mv_parse(mv_arena *a, const char *s);

// canon.c: canonical text of a tree (commutative arguments sorted), for structural equality.
void mv_canon(const mv_node *x, buf_t *out);
int mv_struct_equal(const mv_node *a, const mv_node *b);

// eval.c: values
#include <gmp.h>
#include <mpfr.h>
#define MV_PREC 192
typedef struct {
    mpfr_t re, im;
} mv_cval;
typedef struct {
    int nvars;
    const char *names[32];
    double vals[32];
} mv_env;
// Resets the per-verdict evaluation budget (MV_WORK_BUDGET); called once per verdict.
void mv_work_reset(void);
// Exact rational value; returns 0 on success, -1 when not a rational constant (or too big).
int mv_eval_exact(const mv_node *x, mpq_t out);
// Complex value at a point (variables from env; unknown variables fail). 0 ok, -1 undefined.
void mv_cval_init(mv_cval *v);
void mv_cval_clear(mv_cval *v);
int mv_eval_num(const mv_node *x, const mv_env *env, mv_cval *out);
// Free variables (SYM names, not bound by \sum), deduplicated, sorted; returns count (<= cap).
int mv_free_vars(const mv_node *x, const char **names, int cap);
int mv_has_float(const mv_node *x);

// compare.c
typedef struct {
    int strict, set_relation, lenient_decimals;  // math_opts_t
    const char *why;  // short reason of the last decision
    const char *gold_unit, *pred_unit;  // mv_normalize's units ("" or NULL: none)
} mv_cmp_ctx;
int mv_equal(mv_cmp_ctx *c, mv_arena *a, mv_node *gold, mv_node *pred);

#endif
