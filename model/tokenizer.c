// model/tokenizer.c — BPE tokenizers from a Hugging Face tokenizer.json (see model/tokenizer.h for
// what is supported). Every step follows the `tokenizers` Rust crate so that ids are identical:
//   text -> added tokens split out (leftmost-longest) -> pre-tokenizer pieces (regex splits, byte
//   to unicode mapping) -> BPE merges per piece (lowest rank first, leftmost on ties) -> ids
//   -> optional post-processor (BOS/EOS templates).
// Decoding maps ids to token strings and runs the decoder steps over the list (ByteLevel maps characters
// back to bytes, ByteFallback <0xNN> tokens, Metaspace "▁" to spaces, ...), then joins it.
// defines: the functions of model/tokenizer.h
#include "model/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/rng.h"
#include "base/utf8.h"
#include "model/tokenizer_norm.h"
#include "model/tokenizer_unicode.h"

// ============================================ small helpers ============================================

void token_ids_push(token_ids_t *t, int32_t id) {
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->ids = cispo_realloc(t->ids, t->cap * sizeof *t->ids);
    }
    t->ids[t->n++] = id;
}

void token_ids_free(token_ids_t *t) {
    free(t->ids);
    t->ids = NULL;
    t->n = t->cap = 0;
}

// Rust's char::is_whitespace (the Unicode White_Space property), used by added-token lstrip/rstrip.
static int is_unicode_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = rng_fnv1a(s, n);
    return h ^ (h >> 29);
}

// ---- string -> id map (open addressing; keys point at strings the tokenizer owns) ----
typedef struct {
    const char *key;  // NULL: empty slot
    uint32_t len;
    int32_t val;
} smap_slot_t;
typedef struct {
    smap_slot_t *slots;  // [cap], cap a power of two
    size_t cap, n;
} smap_t;

static const int32_t *smap_get(const smap_t *m, const char *key, size_t len) {
    if (!m->cap) return NULL;
    for (size_t i = hash_bytes(key, len) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        const smap_slot_t *s = &m->slots[i];
        if (!s->key) return NULL;
        if (s->len == len && !memcmp(s->key, key, len)) return &s->val;
    }
}

static void smap_put(smap_t *m, const char *key, size_t len, int32_t val) {
    if (2 * (m->n + 1) > m->cap) {
        smap_t g = {cispo_calloc(m->cap ? 2 * m->cap : 64, sizeof(smap_slot_t)), m->cap ? 2 * m->cap : 64, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key) smap_put(&g, m->slots[i].key, m->slots[i].len, m->slots[i].val);
        free(m->slots);
        *m = g;
    }
    size_t i = hash_bytes(key, len) & (m->cap - 1);
    while (m->slots[i].key && !(m->slots[i].len == len && !memcmp(m->slots[i].key, key, len))) i = (i + 1) & (m->cap - 1);
    if (!m->slots[i].key) m->n++;
    m->slots[i] = (smap_slot_t){key, (uint32_t)len, val};
}

// ---- (left id, right id) -> (rank, merged id) map for the BPE merges ----
typedef struct {
    uint64_t key;  // UINT64_MAX: empty
    uint32_t rank;
    int32_t new_id;
} pmap_slot_t;
typedef struct {
    pmap_slot_t *slots;
    size_t cap, n;
} pmap_t;

static uint64_t pair_key(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }
static size_t pair_hash(uint64_t k) {
    k ^= k >> 33; k *= 0xff51afd7ed558ccdull; k ^= k >> 33;
    return (size_t)k;
}

static const pmap_slot_t *pmap_get(const pmap_t *m, int32_t a, int32_t b) {
    if (!m->cap) return NULL;
    uint64_t k = pair_key(a, b);
    for (size_t i = pair_hash(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == UINT64_MAX) return NULL;
        if (m->slots[i].key == k) return &m->slots[i];
    }
}

// A repeated pair keeps the later rank: `tokenizers` collects the merges into a HashMap in order.
static void pmap_put(pmap_t *m, int32_t a, int32_t b, uint32_t rank, int32_t new_id) {
    if (2 * (m->n + 1) > m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 1024;
        pmap_t g = {cispo_malloc(cap * sizeof(pmap_slot_t)), cap, 0};
        for (size_t i = 0; i < cap; i++) g.slots[i].key = UINT64_MAX;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key != UINT64_MAX)
                pmap_put(&g, (int32_t)(m->slots[i].key >> 32), (int32_t)(uint32_t)m->slots[i].key, m->slots[i].rank,
                         m->slots[i].new_id);
        free(m->slots);
        *m = g;
    }
    uint64_t k = pair_key(a, b);
    size_t i = pair_hash(k) & (m->cap - 1);
    while (m->slots[i].key != UINT64_MAX && m->slots[i].key != k) i = (i + 1) & (m->cap - 1);
    if (m->slots[i].key == UINT64_MAX) m->n++;
    m->slots[i] = (pmap_slot_t){k, rank, new_id};
}

// ============================================ the tokenizer ============================================

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    unsigned char special, lstrip, rstrip, single_word, normalized;
} added_token_t;

enum pre_kind { PRE_BYTELEVEL, PRE_SPLIT, PRE_METASPACE, PRE_PUNCT };
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };
enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT, SPLIT_CONTIGUOUS };

typedef struct {
    int kind;              // enum pre_kind
    int add_prefix_space;  // ByteLevel
    int use_regex;         // ByteLevel: split with the GPT-2 regex first
    pcre2_code *re;        // Split (and Digits, as \p{N}); ByteLevel's GPT-2 regex
    int behavior;          // enum split_behavior
    int invert;            // Split: the regex matches the pieces to keep, not the delimiters
    uint32_t replacement;  // Metaspace: the character standing for a space (U+2581 "▁")
    int prepend;           // Metaspace: enum prepend_scheme
    int split;             // Metaspace: split before each replacement character
} pre_step_t;

#define POST_SEQ_A (-1)  // a template item standing for the encoded sequence
typedef struct {
    int32_t *items;  // [n]: token ids, or POST_SEQ_A
    int n;
} post_step_t;

enum decoder_kind { DEC_BYTELEVEL, DEC_BYTEFALLBACK, DEC_METASPACE, DEC_REPLACE, DEC_FUSE, DEC_STRIP };
typedef struct {
    int kind;              // enum decoder_kind
    uint32_t ch;           // Metaspace: the replacement character; Strip: the character stripped
    int prepend;           // Metaspace: enum prepend_scheme
    size_t start, stop;    // Strip: at most this many characters from the left / right of each token
    char *literal;         // Replace: a String pattern, or NULL with re set
    pcre2_code *re;        // Replace: a Regex pattern
    char *content;         // Replace: what each match becomes
} dec_step_t;

struct tokenizer {
    char *path;
    int32_t n_ids;  // one more than the largest id
    // BPE model
    char **keys;       // [n_keys]: the model's token strings (owned)
    int32_t n_keys;
    char **vocab_str;  // [n_ids]: the model's token of each id (into keys), NULL where it has none
    smap_t vocab;      // token -> id
    pmap_t merges;     // (a, b) -> rank, merged id
    int32_t unk_id;    // -1: none
    int fuse_unk, byte_fallback, ignore_merges;
    char *subword_prefix, *word_suffix;  // continuing_subword_prefix, end_of_word_suffix ("" if none)
    int32_t byte_ids[256];               // byte_fallback: the ids of <0x00>..<0xFF>, -1 when absent
    // added tokens
    added_token_t *added;  // [n_added]
    int n_added;
    int32_t *added_of_id;  // [n_ids]: index into added, or -1
    smap_t added_map;      // content -> index into added
    int *by_first;         // [n_added]: indices into added grouped by first byte ...
    int first_at[257];     // ... those starting with byte b are by_first[first_at[b], first_at[b+1])
    pcre2_code *word_char; // a Unicode \w character (as regex_syntax::is_word_character), for single_word
    // pipeline
    pre_step_t *pre;
    int n_pre;
    post_step_t *post;
    int n_post;
    dec_step_t *dec;  // [n_dec]; none: tokens are joined by spaces, as `tokenizers` does
    int n_dec;
    int32_t eos_id, bos_id, pad_id;
    tok_normalizer_t *norm;  // NULL: none
};

// The GPT-2 byte to unicode table: printable bytes map to themselves, the rest to U+0100 onwards,
// so that every byte is a visible character in the vocabulary.
static uint32_t byte_to_cp[256];
static int16_t cp_to_byte[324];  // inverse, for code points below 324; -1 elsewhere
static void byte_tables_init(void) {
    if (byte_to_cp['!']) return;  // filled (idempotent, so a race only repeats the same writes)
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    uint32_t extra = 256;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_to_cp[b] = printable ? (uint32_t)b : extra++;
        cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
}

// ============================================ loading ============================================

static pcre2_code *regex_compile(const char *path, const char *key, const char *pat) {
    char *rw = tok_unicode_regex(pat);
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)rw, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
    free(rw);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        cispo_fail("%s: key '%s': regex '%s' does not compile at offset %zu: %s", path, key, pat, (size_t)off, (char *)msg);
        return NULL;
    }
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);  // optional speed-up; the interpreter is used if it fails
    return re;
}

// Escapes a literal for a regex (Split with a String pattern).
static char *regex_escape(const char *s) {
    buf_t b = {0};
    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}-#&~ ", *s)) buf_append(&b, "\\", 1);
        buf_append(&b, s, 1);
    }
    return buf_take(&b, NULL);
}

static int json_bool(const cJSON *obj, const char *key, int dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;
}

static const char *json_str(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_pre_step(tokenizer_t *t, const cJSON *pj, const char *key);

// A Split/Punctuation "behavior" (dflt when the key is absent and dflt is not NULL): the enum, or -1.
static int split_behavior_of(const tokenizer_t *t, const cJSON *pj, const char *key, const char *dflt) {
    const char *beh = json_str(pj, "behavior");
    if (!beh && !cJSON_GetObjectItemCaseSensitive(pj, "behavior")) beh = dflt;
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"};
    for (int i = 0; i < 5 && beh; i++)
        if (!strcmp(beh, names[i])) return i;
    return cispo_fail("%s: key '%s.behavior': '%s' is not one of Removed, Isolated, MergedWithPrevious, "
                      "MergedWithNext, Contiguous", t->path, key, beh ? beh : "(missing)");
}

// Metaspace's prepend_scheme ("always", "first", "never"; default always), as the `tokenizers`
// deserializer reads it (an older add_prefix_space=false must come with "never"). The enum, or -1.
static int prepend_scheme_of(const tokenizer_t *t, const cJSON *pj, const char *key) {
    const char *ps = json_str(pj, "prepend_scheme");
    const cJSON *aps = cJSON_GetObjectItemCaseSensitive(pj, "add_prefix_space");
    int scheme = -1;
    if (!ps && !cJSON_GetObjectItemCaseSensitive(pj, "prepend_scheme")) scheme = PREPEND_ALWAYS;
    else if (ps && !strcmp(ps, "always")) scheme = PREPEND_ALWAYS;
    else if (ps && !strcmp(ps, "first")) scheme = PREPEND_FIRST;
    else if (ps && !strcmp(ps, "never")) scheme = PREPEND_NEVER;
    else return cispo_fail("%s: key '%s.prepend_scheme': '%s' is not one of always, first, never", t->path, key,
                           ps ? ps : "(not a string)");
    if (cJSON_IsFalse(aps) && scheme != PREPEND_NEVER)  // refused by `tokenizers` too
        return cispo_fail("%s: key '%s.add_prefix_space': false does not match prepend_scheme '%s'", t->path, key,
                          ps ? ps : "always (the default)");
    return scheme;
}

// A one-character string field (Metaspace replacement, Strip content): its code point, or -1.
static int get_char(const tokenizer_t *t, const cJSON *obj, const char *key, const char *field, uint32_t *cp) {
    const char *v = json_str(obj, field);
    int l = v ? utf8_decode(v, strlen(v), cp) : 0;
    if (l <= 0 || v[l]) return cispo_fail("%s: key '%s.%s': missing or not a single character", t->path, key, field);
    return 0;
}

static void pre_push(tokenizer_t *t, pre_step_t s) {
    t->pre = cispo_realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *t->pre);
    t->pre[t->n_pre++] = s;
}

static int load_pre_step(tokenizer_t *t, const cJSON *pj, const char *key) {
    const char *type = json_str(pj, "type");
    if (!type) return cispo_fail("%s: key '%s.type': missing (expected ByteLevel, Split, Digits or Sequence)", t->path, key);
    char sub[256];
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pj, "pretokenizers");
        if (!cJSON_IsArray(list)) return cispo_fail("%s: key '%s.pretokenizers': missing or not an array", t->path, key);
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%d]", key, i);
            if (load_pre_step(t, e, sub)) return -1;
        }
        return 0;
    }
    pre_step_t s = {0};
    if (!strcmp(type, "ByteLevel")) {
        s.kind = PRE_BYTELEVEL;
        s.add_prefix_space = json_bool(pj, "add_prefix_space", 1);
        s.use_regex = json_bool(pj, "use_regex", 1);
        if (s.use_regex) {
            snprintf(sub, sizeof sub, "%s (ByteLevel regex)", key);
            s.re = regex_compile(t->path, sub, "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+");
            if (!s.re) return -1;
        }
    } else if (!strcmp(type, "Split")) {
        s.kind = PRE_SPLIT;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(pj, "pattern");
        const char *rx = json_str(pat, "Regex"), *lit = json_str(pat, "String");
        snprintf(sub, sizeof sub, "%s.pattern", key);
        if (rx) {
            s.re = regex_compile(t->path, sub, rx);
        } else if (lit) {
            char *esc = regex_escape(lit);
            s.re = regex_compile(t->path, sub, esc);
            free(esc);
        } else {
            return cispo_fail("%s: key '%s': missing {\"Regex\": ...} or {\"String\": ...}", t->path, sub);
        }
        if (!s.re) return -1;
        if ((s.behavior = split_behavior_of(t, pj, key, NULL)) < 0) {
            pcre2_code_free(s.re);
            return -1;
        }
        s.invert = json_bool(pj, "invert", 0);
    } else if (!strcmp(type, "Digits")) {
        // Digits splits on char::is_numeric (categories Nd, Nl, No = \p{N}), one match per character.
        s.kind = PRE_SPLIT;
        s.behavior = json_bool(pj, "individual_digits", 0) ? SPLIT_ISOLATED : SPLIT_CONTIGUOUS;
        snprintf(sub, sizeof sub, "%s (Digits)", key);
        if (!(s.re = regex_compile(t->path, sub, "\\p{N}"))) return -1;
    } else if (!strcmp(type, "Metaspace")) {
        // SentencePiece-style: spaces become the replacement character, one is prepended (always, only at
        // the start of the text, or never) and pieces start at each replacement (split).
        s.kind = PRE_METASPACE;
        if ((s.prepend = prepend_scheme_of(t, pj, key)) < 0 || get_char(t, pj, key, "replacement", &s.replacement))
            return -1;
        s.split = json_bool(pj, "split", 1);
    } else if (!strcmp(type, "Punctuation")) {
        s.kind = PRE_PUNCT;
        if ((s.behavior = split_behavior_of(t, pj, key, "Isolated")) < 0) return -1;
    } else {
        return cispo_fail("%s: key '%s.type': pre-tokenizer '%s' is not supported (ByteLevel, Split, Digits, Metaspace, "
                          "Punctuation, Sequence)", t->path, key, type);
    }
    pre_push(t, s);
    return 0;
}

// The id in a RobertaProcessing/BertProcessing ["token", id] pair (cls, sep).
static int post_token_id(tokenizer_t *t, const cJSON *pair, const char *key, int32_t *id) {
    const cJSON *idj = cJSON_GetArrayItem(pair, 1);
    if (!cJSON_IsArray(pair) || !cJSON_IsNumber(idj))
        return cispo_fail("%s: key '%s': expected [\"token\", id]", t->path, key);
    *id = (int32_t)idj->valuedouble;
    return 0;
}

static void post_push(tokenizer_t *t, const int32_t *items, int n) {
    t->post = cispo_realloc(t->post, (size_t)(t->n_post + 1) * sizeof *t->post);
    post_step_t *p = &t->post[t->n_post++];
    p->items = cispo_malloc((size_t)n * sizeof(int32_t));
    memcpy(p->items, items, (size_t)n * sizeof(int32_t));
    p->n = n;
}

static int load_post_step(tokenizer_t *t, const cJSON *pj, const char *key) {
    const char *type = json_str(pj, "type");
    if (!type) return cispo_fail("%s: key '%s.type': missing", t->path, key);
    char sub[256];
    if (!strcmp(type, "ByteLevel")) return 0;  // trims offsets only; ids are untouched
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(pj, "processors");
        if (!cJSON_IsArray(list)) return cispo_fail("%s: key '%s.processors': missing or not an array", t->path, key);
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(sub, sizeof sub, "%s.processors[%d]", key, i);
            if (load_post_step(t, e, sub)) return -1;
        }
        return 0;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        int32_t items[3] = {0, POST_SEQ_A, 0};
        snprintf(sub, sizeof sub, "%s.cls", key);
        if (post_token_id(t, cJSON_GetObjectItemCaseSensitive(pj, "cls"), sub, &items[0])) return -1;
        snprintf(sub, sizeof sub, "%s.sep", key);
        if (post_token_id(t, cJSON_GetObjectItemCaseSensitive(pj, "sep"), sub, &items[2])) return -1;
        post_push(t, items, 3);
        return 0;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(pj, "single");
        const cJSON *specials = cJSON_GetObjectItemCaseSensitive(pj, "special_tokens");
        if (!cJSON_IsArray(single)) return cispo_fail("%s: key '%s.single': missing or not an array", t->path, key);
        int32_t *items = NULL;
        int n = 0, i = 0;
        for (const cJSON *e = single->child; e; e = e->next, i++) {
            const cJSON *seq = cJSON_GetObjectItemCaseSensitive(e, "Sequence");
            const cJSON *sp = cJSON_GetObjectItemCaseSensitive(e, "SpecialToken");
            if (seq) {
                const char *which = json_str(seq, "id");
                if (!which || strcmp(which, "A")) {
                    free(items);
                    return cispo_fail("%s: key '%s.single[%d]': a single-sequence template can only hold sequence A",
                                      t->path, key, i);
                }
                items = cispo_realloc(items, (size_t)(n + 1) * sizeof *items);
                items[n++] = POST_SEQ_A;
            } else if (sp) {
                const char *name = json_str(sp, "id");
                const cJSON *def = name ? cJSON_GetObjectItemCaseSensitive(specials, name) : NULL;
                const cJSON *ids = cJSON_GetObjectItemCaseSensitive(def, "ids");
                if (!cJSON_IsArray(ids)) {
                    free(items);
                    return cispo_fail("%s: key '%s.special_tokens': no ids for '%s' used by single[%d]", t->path, key,
                                      name ? name : "(missing id)", i);
                }
                for (const cJSON *x = ids->child; x; x = x->next) {
                    items = cispo_realloc(items, (size_t)(n + 1) * sizeof *items);
                    items[n++] = (int32_t)x->valuedouble;
                }
            } else {
                free(items);
                return cispo_fail("%s: key '%s.single[%d]': expected {\"Sequence\": ...} or {\"SpecialToken\": ...}",
                                  t->path, key, i);
            }
        }
        post_push(t, items, n);
        free(items);
        return 0;
    }
    return cispo_fail("%s: key '%s.type': post-processor '%s' is not supported (ByteLevel, TemplateProcessing, "
                      "RobertaProcessing, BertProcessing, Sequence)", t->path, key, type);
}

static void dec_push(tokenizer_t *t, dec_step_t d) {
    t->dec = cispo_realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *t->dec);
    t->dec[t->n_dec++] = d;
}

static int load_decoder(tokenizer_t *t, const cJSON *dj, const char *key) {
    if (!dj || cJSON_IsNull(dj)) return 0;
    const char *type = json_str(dj, "type");
    if (!type) return cispo_fail("%s: key '%s.type': missing", t->path, key);
    char sub[256];
    dec_step_t d = {0};
    if (!strcmp(type, "Sequence")) {
        const cJSON *list = cJSON_GetObjectItemCaseSensitive(dj, "decoders");
        if (!cJSON_IsArray(list)) return cispo_fail("%s: key '%s.decoders': missing or not an array", t->path, key);
        int i = 0;
        for (const cJSON *e = list->child; e; e = e->next, i++) {
            snprintf(sub, sizeof sub, "%s.decoders[%d]", key, i);
            if (load_decoder(t, e, sub)) return -1;
        }
        return 0;
    } else if (!strcmp(type, "ByteLevel")) {
        d.kind = DEC_BYTELEVEL;
    } else if (!strcmp(type, "ByteFallback")) {
        d.kind = DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        d.kind = DEC_FUSE;
    } else if (!strcmp(type, "Metaspace")) {
        d.kind = DEC_METASPACE;
        if ((d.prepend = prepend_scheme_of(t, dj, key)) < 0 || get_char(t, dj, key, "replacement", &d.ch)) return -1;
    } else if (!strcmp(type, "Strip")) {
        d.kind = DEC_STRIP;
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(dj, "start"), *b = cJSON_GetObjectItemCaseSensitive(dj, "stop");
        if (get_char(t, dj, key, "content", &d.ch)) return -1;
        if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b) || a->valuedouble < 0 || b->valuedouble < 0)
            return cispo_fail("%s: key '%s': Strip needs non-negative integers \"start\" and \"stop\"", t->path, key);
        d.start = (size_t)a->valuedouble;
        d.stop = (size_t)b->valuedouble;
    } else if (!strcmp(type, "Replace")) {
        d.kind = DEC_REPLACE;
        const cJSON *pat = cJSON_GetObjectItemCaseSensitive(dj, "pattern");
        const char *rx = json_str(pat, "Regex"), *lit = json_str(pat, "String"), *content = json_str(dj, "content");
        snprintf(sub, sizeof sub, "%s.pattern", key);
        if (!content) return cispo_fail("%s: key '%s.content': missing or not a string", t->path, key);
        if (lit && lit[0]) d.literal = cispo_strdup(lit);
        else if (rx && !(d.re = regex_compile(t->path, sub, rx))) return -1;
        else if (!rx) return cispo_fail("%s: key '%s': needs a non-empty {\"String\": ...} or {\"Regex\": ...}", t->path, sub);
        d.content = cispo_strdup(content);
    } else {
        return cispo_fail("%s: key '%s.type': decoder '%s' is not supported (ByteLevel, ByteFallback, Metaspace, Replace, "
                          "Fuse, Strip, Sequence)", t->path, key, type);
    }
    dec_push(t, d);
    return 0;
}

static int load_model(tokenizer_t *t, const cJSON *mj) {
    const char *type = json_str(mj, "type");
    if (!type && cJSON_GetObjectItemCaseSensitive(mj, "merges")) type = "BPE";  // old files omit the type
    if (!type || strcmp(type, "BPE"))
        return cispo_fail("%s: key 'model.type': model '%s' is not supported (only BPE)", t->path, type ? type : "(missing)");
    const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(mj, "vocab");
    const cJSON *merges = cJSON_GetObjectItemCaseSensitive(mj, "merges");
    if (!cJSON_IsObject(vocab)) return cispo_fail("%s: key 'model.vocab': missing or not an object", t->path);
    if (!cJSON_IsArray(merges)) return cispo_fail("%s: key 'model.merges': missing or not an array", t->path);
    int32_t max_id = -1;
    for (const cJSON *e = vocab->child; e; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble > 1e8 || e->valuedouble != (int32_t)e->valuedouble)
            return cispo_fail("%s: key 'model.vocab' entry '%s': id is not a non-negative integer", t->path, e->string);
        if ((int32_t)e->valuedouble > max_id) max_id = (int32_t)e->valuedouble;
    }
    t->n_ids = max_id + 1;
    t->vocab_str = cispo_calloc((size_t)t->n_ids, sizeof(char *));
    t->keys = cispo_malloc((size_t)cJSON_GetArraySize(vocab) * sizeof(char *) + 1);
    for (const cJSON *e = vocab->child; e; e = e->next) {
        int32_t id = (int32_t)e->valuedouble;
        char *key = t->keys[t->n_keys++] = cispo_strdup(e->string);
        smap_put(&t->vocab, key, strlen(key), id);
        if (!t->vocab_str[id]) t->vocab_str[id] = key;  // two tokens with one id: id_to_token names the first
    }
    const char *prefix = json_str(mj, "continuing_subword_prefix"), *suffix = json_str(mj, "end_of_word_suffix");
    t->subword_prefix = cispo_strdup(prefix ? prefix : "");
    t->word_suffix = cispo_strdup(suffix ? suffix : "");
    t->fuse_unk = json_bool(mj, "fuse_unk", 0);
    t->byte_fallback = json_bool(mj, "byte_fallback", 0);
    t->ignore_merges = json_bool(mj, "ignore_merges", 0);
    t->unk_id = -1;
    const char *unk = json_str(mj, "unk_token");
    if (unk) {
        const int32_t *u = smap_get(&t->vocab, unk, strlen(unk));
        if (!u) return cispo_fail("%s: key 'model.unk_token': '%s' is not in model.vocab", t->path, unk);
        t->unk_id = *u;
    }
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        const int32_t *id = smap_get(&t->vocab, name, strlen(name));
        t->byte_ids[b] = id ? *id : -1;
    }
    size_t plen = strlen(t->subword_prefix);
    buf_t joined = {0};
    uint32_t rank = 0;
    for (const cJSON *e = merges->child; e; e = e->next, rank++) {
        const char *a = NULL, *b = NULL;
        char *split = NULL;
        if (cJSON_IsString(e)) {  // "a b": split at the first space (byte-level tokens hold no spaces)
            split = cispo_strdup(e->valuestring);
            char *sp = strchr(split, ' ');
            if (sp) { *sp = 0; a = split; b = sp + 1; }
        } else if (cJSON_IsArray(e) && cJSON_GetArraySize(e) == 2 && cJSON_IsString(e->child) &&
                   cJSON_IsString(e->child->next)) {
            a = e->child->valuestring;
            b = e->child->next->valuestring;
        }
        if (!a || !b) {
            free(split); free(joined.s);
            return cispo_fail("%s: key 'model.merges[%u]': expected \"a b\" or [\"a\", \"b\"]", t->path, rank);
        }
        const int32_t *ia = smap_get(&t->vocab, a, strlen(a)), *ib = smap_get(&t->vocab, b, strlen(b));
        const char *missing = !ia ? a : !ib ? b : NULL;
        if (!missing && strlen(b) < plen) missing = b;
        joined.n = 0;
        if (!missing) {
            buf_append(&joined, a, strlen(a));
            buf_append(&joined, b + plen, strlen(b) - plen);
        }
        const int32_t *inew = missing ? NULL : smap_get(&t->vocab, joined.s, joined.n);
        if (!missing && !inew) missing = joined.s;
        if (missing) {
            cispo_fail("%s: key 'model.merges[%u]': token '%s' is not in model.vocab", t->path, rank, missing);
            free(split); free(joined.s);
            return -1;
        }
        pmap_put(&t->merges, *ia, *ib, rank, *inew);
        free(split);
    }
    free(joined.s);
    return 0;
}

static int load_added(tokenizer_t *t, const cJSON *aj) {
    if (!aj || cJSON_IsNull(aj)) return 0;
    if (!cJSON_IsArray(aj)) return cispo_fail("%s: key 'added_tokens': not an array", t->path);
    int n = cJSON_GetArraySize(aj), i = 0;
    t->added = cispo_calloc((size_t)n + 1, sizeof *t->added);
    // Ids are assigned as `tokenizers` does when it reads the file (it only warns about the declared
    // id): a token already known keeps its id, a new one takes the next id after the vocabulary
    // (counted in entries) or after the largest added id. For consistent files both agree.
    int32_t model_count = (int32_t)t->vocab.n, max_added = -1;
    for (const cJSON *e = aj->child; e; e = e->next, i++) {
        const char *content = json_str(e, "content");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        if (!content || !cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > 1e8)
            return cispo_fail("%s: key 'added_tokens[%d]': needs \"content\" (string) and \"id\" (non-negative integer)",
                              t->path, i);
        size_t len = strlen(content);
        if (len == 0) continue;  // `tokenizers` ignores empty tokens
        // `tokenizers` normalizes the content of a normalized token when it adds it: that form is the
        // one matched in normalized text, looked up and decoded.
        char *norm_content = NULL;
        int norm_flag = json_bool(e, "normalized", !json_bool(e, "special", 0));
        if (norm_flag && t->norm) {
            norm_content = tok_normalizer_apply(t->norm, content, len, &len);
            if (!norm_content) return cispo_fail("%s: key 'added_tokens[%d].content': not valid UTF-8", t->path, i);
            content = norm_content;
            if (len == 0) {
                free(norm_content);
                continue;
            }
        }
        added_token_t tok = {NULL, len, -1, (unsigned char)json_bool(e, "special", 0),
                             (unsigned char)json_bool(e, "lstrip", 0), (unsigned char)json_bool(e, "rstrip", 0),
                             (unsigned char)json_bool(e, "single_word", 0), 0};
        tok.normalized = (unsigned char)json_bool(e, "normalized", !tok.special);
        const int32_t *known = smap_get(&t->added_map, content, len), *in_vocab = smap_get(&t->vocab, content, len);
        int32_t assigned = known ? t->added[*known].id
                           : in_vocab ? *in_vocab
                           : max_added < 0 ? model_count
                           : max_added >= model_count || model_count == 0 ? max_added + 1 : model_count;
        if (assigned != (int32_t)id->valuedouble)
            fprintf(stderr, "cispo: warning: %s: added_tokens[%d] '%s' declares id %d but gets id %d, as the tokenizers "
                            "package assigns it (the file's ids are inconsistent)\n", t->path, i, content,
                    (int)id->valuedouble, (int)assigned);
        if (known) {  // a repeated token: the later flags win, special once special
            added_token_t *a = &t->added[*known];
            tok.special |= a->special;
            tok.content = a->content;
            tok.id = a->id;
            *a = tok;
        } else {
            tok.content = cispo_strdup(content);
            tok.id = assigned;
            t->added[t->n_added++] = tok;
            smap_put(&t->added_map, tok.content, len, t->n_added - 1);
            if (assigned > max_added) max_added = assigned;
        }
        free(norm_content);
        if (assigned >= t->n_ids) {
            t->vocab_str = cispo_realloc(t->vocab_str, ((size_t)assigned + 1) * sizeof(char *));
            for (int32_t k = t->n_ids; k <= assigned; k++) t->vocab_str[k] = NULL;
            t->n_ids = assigned + 1;
        }
        if (tok.single_word && !t->word_char &&
            !(t->word_char = regex_compile(t->path, "added_tokens (single_word)",
                                          "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}]")))
            return -1;
    }
    t->by_first = cispo_malloc(((size_t)t->n_added + 1) * sizeof(int));
    int fill = 0;
    for (int b = 0; b < 256; b++) {
        t->first_at[b] = fill;
        for (int k = 0; k < t->n_added; k++)
            if (t->added[k].len && (unsigned char)t->added[k].content[0] == b) t->by_first[fill++] = k;
    }
    t->first_at[256] = fill;
    t->added_of_id = cispo_malloc((size_t)t->n_ids * sizeof(int32_t));
    for (int32_t k = 0; k < t->n_ids; k++) t->added_of_id[k] = -1;
    for (int k = 0; k < t->n_added; k++) t->added_of_id[t->added[k].id] = k;
    return 0;
}

// An end/begin/pad token id: tokenizer_config.json's key (a string or an AddedToken object; null says
// there is none) when the file has it, else the first of names that is an added token. Ordinary
// vocabulary entries never count: a Qwen-style file's plain "<s>" is no BOS, RoBERTa's plain
// "<|endoftext|>" no EOS (its special "</s>" is).
static int32_t find_named(const tokenizer_t *t, const cJSON *cfg, const char *key, const char *const *names) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (v) {
        if (cJSON_IsNull(v)) return -1;
        const char *name = cJSON_IsString(v) ? v->valuestring : json_str(v, "content");
        int32_t id = name ? tokenizer_token_to_id(t, name) : -1;
        if (id >= 0) return id;
    }
    for (; *names; names++) {
        const int32_t *a = smap_get(&t->added_map, *names, strlen(*names));
        if (a) return t->added[*a].id;
    }
    return -1;
}

tokenizer_t *tokenizer_load(const char *path) {
    byte_tables_init();
    char *text = cispo_read_file(path, NULL);
    if (!text) return NULL;
    cJSON *root = cJSON_Parse(text);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();  // points into text
        cispo_fail("%s: not valid JSON at byte %ld", path, at && at >= text ? (long)(at - text) : -1L);
        free(text);
        return NULL;
    }
    free(text);
    tokenizer_t *t = cispo_calloc(1, sizeof *t);
    t->path = cispo_strdup(path);
    int rc = 0;
    const cJSON *mj = cJSON_GetObjectItemCaseSensitive(root, "model");
    const cJSON *nj = cJSON_GetObjectItemCaseSensitive(root, "normalizer");
    const cJSON *pj = cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer");
    const cJSON *ppj = cJSON_GetObjectItemCaseSensitive(root, "post_processor");
    if (!cJSON_IsObject(mj)) rc = cispo_fail("%s: key 'model': missing (a tokenizer.json needs a model section)", path);
    if (!rc) rc = load_model(t, mj);
    if (!rc) rc = tok_normalizer_load(&t->norm, nj, path);
    if (!rc) rc = load_added(t, cJSON_GetObjectItemCaseSensitive(root, "added_tokens"));
    if (!rc && pj && !cJSON_IsNull(pj)) rc = load_pre_step(t, pj, "pre_tokenizer");
    if (!rc && ppj && !cJSON_IsNull(ppj)) rc = load_post_step(t, ppj, "post_processor");
    if (!rc) rc = load_decoder(t, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "decoder");
    cJSON_Delete(root);
    if (rc) {
        tokenizer_free(t);
        return NULL;
    }
    // tokenizer_config.json beside the file names eos/bos/pad for Hugging Face model directories.
    char *cfg_path = cispo_malloc(strlen(path) + 32);
    strcpy(cfg_path, path);
    char *slash = strrchr(cfg_path, '/');
    strcpy(slash ? slash + 1 : cfg_path, "tokenizer_config.json");
    char *cfg_text = cispo_read_file(cfg_path, NULL);
    cJSON *cfg = cfg_text ? cJSON_Parse(cfg_text) : NULL;
    if (cfg_text && !cfg)
        fprintf(stderr, "cispo: warning: %s: not valid JSON; special tokens are taken from %s alone\n", cfg_path, path);
    cispo_clear_error();
    static const char *const eos_names[] = {"<|endoftext|>", "<|im_end|>", "<|end_of_text|>", "<|eot_id|>", "</s>",
                                            "<eos>", "<|end|>", NULL};
    static const char *const bos_names[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", NULL};
    static const char *const pad_names[] = {"<pad>", "<|pad|>", "[PAD]", "<|finetune_right_pad_id|>", NULL};
    t->eos_id = find_named(t, cfg, "eos_token", eos_names);
    t->bos_id = find_named(t, cfg, "bos_token", bos_names);
    t->pad_id = find_named(t, cfg, "pad_token", pad_names);
    cJSON_Delete(cfg);
    free(cfg_text);
    free(cfg_path);
    return t;
}

void tokenizer_free(tokenizer_t *t) {
    if (!t) return;
    tok_normalizer_free(t->norm);
    for (int32_t i = 0; i < t->n_keys; i++) free(t->keys[i]);
    free(t->keys);
    free(t->vocab_str);
    free(t->vocab.slots);
    free(t->merges.slots);
    free(t->subword_prefix);
    free(t->word_suffix);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->added_of_id);
    free(t->by_first);
    free(t->added_map.slots);
    pcre2_code_free(t->word_char);
    for (int i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].re);
    free(t->pre);
    for (int i = 0; i < t->n_post; i++) free(t->post[i].items);
    free(t->post);
    for (int i = 0; i < t->n_dec; i++) {
        free(t->dec[i].literal);
        free(t->dec[i].content);
        pcre2_code_free(t->dec[i].re);
    }
    free(t->dec);
    free(t->path);
    free(t);
}

// ============================================ lookups ============================================

int32_t tokenizer_token_to_id(const tokenizer_t *t, const char *token) {
    size_t n = strlen(token);
    const int32_t *a = smap_get(&t->added_map, token, n);
    if (a) return t->added[*a].id;
    const int32_t *v = smap_get(&t->vocab, token, n);
    return v ? *v : -1;
}

const char *tokenizer_id_to_token(const tokenizer_t *t, int32_t id) {
    if (id < 0 || id >= t->n_ids) return NULL;
    if (t->added_of_id && t->added_of_id[id] >= 0) return t->added[t->added_of_id[id]].content;
    return t->vocab_str[id];
}

int32_t tokenizer_vocab_size(const tokenizer_t *t) { return t->n_ids; }

int tokenizer_is_special(const tokenizer_t *t, int32_t id) {
    if (id < 0 || id >= t->n_ids || !t->added_of_id || t->added_of_id[id] < 0) return 0;
    return t->added[t->added_of_id[id]].special;
}

int32_t tokenizer_special_id(const tokenizer_t *t, const char *name) {
    const int32_t *a = smap_get(&t->added_map, name, strlen(name));
    return a && t->added[*a].special ? t->added[*a].id : -1;
}

int32_t tokenizer_eos_id(const tokenizer_t *t) { return t->eos_id; }
int32_t tokenizer_bos_id(const tokenizer_t *t) { return t->bos_id; }
int32_t tokenizer_pad_id(const tokenizer_t *t) { return t->pad_id; }
const char *tokenizer_path(const tokenizer_t *t) { return t->path; }

// ============================================ encoding ============================================

// Pieces of text during pre-tokenization: piece i is buf[start[i], end[i]).
typedef struct {
    buf_t buf;
    size_t *start, *end;
    size_t n, cap;
    size_t origin;  // 1 + the index of the piece at offset 0 of the original text; 0: none
} pieces_t;

static void pieces_add(pieces_t *p, const char *s, size_t n) {
    if (n == 0) return;  // `tokenizers` drops empty splits
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 16;
        p->start = cispo_realloc(p->start, p->cap * sizeof(size_t));
        p->end = cispo_realloc(p->end, p->cap * sizeof(size_t));
    }
    p->start[p->n] = p->buf.n;
    buf_append(&p->buf, s, n);
    p->end[p->n++] = p->buf.n;
}

static void pieces_free(pieces_t *p) {
    free(p->buf.s);
    free(p->start);
    free(p->end);
}

// Scratch space reused across the pieces of one encode call.
typedef struct {
    pcre2_match_data *md;
    size_t *mstart, *mend;  // regex segments of one piece
    unsigned char *mflag;   // 1: the segment is a match
    size_t mn, mcap;
    struct bpe_sym *sym;
    size_t sym_cap;
    struct bpe_merge *heap;
    size_t heap_cap;
    buf_t tmp;
} encode_ctx_t;

static void seg_add(encode_ctx_t *c, size_t s, size_t e, int is_match) {
    if (c->mn == c->mcap) {
        c->mcap = c->mcap ? 2 * c->mcap : 64;
        c->mstart = cispo_realloc(c->mstart, c->mcap * sizeof(size_t));
        c->mend = cispo_realloc(c->mend, c->mcap * sizeof(size_t));
        c->mflag = cispo_realloc(c->mflag, c->mcap);
    }
    c->mstart[c->mn] = s;
    c->mend[c->mn] = e;
    c->mflag[c->mn++] = (unsigned char)is_match;
}

// Splits s[0, n) into (segment, is_match) in order, as `tokenizers`' Pattern::find_matches over an
// Oniguruma find_iter: an empty match right where the previous match ended is skipped by moving
// the search on one character.
static int regex_segments(encode_ctx_t *c, const pcre2_code *re, const char *s, size_t n) {
    c->mn = 0;
    size_t prev = 0, from = 0;
    int have_last = 0;
    size_t last_end = 0;
    while (from <= n) {
        // The text was validated once in tokenizer_encode: PCRE2 would otherwise re-check the whole
        // subject on every call, which is quadratic in the length of a piece.
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return cispo_fail("tokenizer: regex match failed: %s", (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (ms == me && have_last && last_end == me) {
            uint32_t cp;
            int l = from < n ? utf8_decode(s + from, n - from, &cp) : 1;
            from += l > 0 ? (size_t)l : 1;
            continue;
        }
        from = me;
        have_last = 1;
        last_end = me;
        if (prev != ms) seg_add(c, prev, ms, 0);
        seg_add(c, ms, me, 1);
        prev = me;
    }
    if (prev != n) seg_add(c, prev, n, 0);
    return 0;
}

// NormalizedString::split with a behavior, appending the kept pieces of s to out.
static void split_by_behavior(encode_ctx_t *c, const char *s, int behavior, int invert, pieces_t *out) {
    if (invert)
        for (size_t i = 0; i < c->mn; i++) c->mflag[i] = !c->mflag[i];
    size_t n = c->mn;
    if (behavior == SPLIT_REMOVED) {
        for (size_t i = 0; i < n; i++)
            if (!c->mflag[i]) pieces_add(out, s + c->mstart[i], c->mend[i] - c->mstart[i]);
        return;
    }
    if (behavior == SPLIT_ISOLATED) {
        for (size_t i = 0; i < n; i++) pieces_add(out, s + c->mstart[i], c->mend[i] - c->mstart[i]);
        return;
    }
    // Merge segments in place into [ks, ke) runs, then emit.
    size_t *ks = cispo_malloc((n + 1) * sizeof(size_t)), *ke = cispo_malloc((n + 1) * sizeof(size_t));
    size_t k = 0;
    int prev_match = 0;
    if (behavior == SPLIT_MERGED_NEXT) {
        // Walk backwards: a match glues onto the run after it (unless that run started with a match).
        for (size_t ii = n; ii-- > 0;) {
            int m = c->mflag[ii];
            if (m && !prev_match && k > 0) ks[k - 1] = c->mstart[ii];
            else { ks[k] = c->mstart[ii]; ke[k] = c->mend[ii]; k++; }
            prev_match = m;
        }
        for (size_t i = k; i-- > 0;) pieces_add(out, s + ks[i], ke[i] - ks[i]);
    } else {
        for (size_t i = 0; i < n; i++) {
            int m = c->mflag[i];
            int glue = behavior == SPLIT_CONTIGUOUS ? (m == prev_match) : (m && !prev_match);
            if (glue && k > 0) ke[k - 1] = c->mend[i];
            else { ks[k] = c->mstart[i]; ke[k] = c->mend[i]; k++; }
            prev_match = m;
        }
        for (size_t i = 0; i < k; i++) pieces_add(out, s + ks[i], ke[i] - ks[i]);
    }
    free(ks);
    free(ke);
}

// Segments for a character pattern (NormalizedString::split with a char or Fn(char) pattern): each
// matching character is a match of its own, the runs between are not. Matches are the character `only`,
// or punctuation (tok_unicode_is_punct) when only is UINT32_MAX.
static void char_segments(encode_ctx_t *c, const char *s, size_t n, uint32_t only) {
    c->mn = 0;
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = utf8_decode(s + i, n - i, &cp);
        if (l <= 0) l = 1, cp = 0xFFFFFFFFu;  // not reached: the input was validated
        if (only == UINT32_MAX ? tok_unicode_is_punct(cp) : cp == only) {
            if (run < i) seg_add(c, run, i, 0);
            seg_add(c, i, i + (size_t)l, 1);
            run = i + (size_t)l;
        }
        i += (size_t)l;
    }
    if (run < n) seg_add(c, run, n, 0);
}

// Runs the pre-tokenizer over one segment of text (no added tokens inside): pieces in order.
// at_origin: the segment starts at offset 0 of the original text (Metaspace's prepend_scheme "first"
// prepends only there, as `tokenizers` checks offsets_original().0 == 0). out->origin marks the piece
// that still starts there.
static int pre_tokenize(const tokenizer_t *t, encode_ctx_t *c, const char *s, size_t n, int at_origin, pieces_t *out) {
    pieces_t cur = {0};
    pieces_add(&cur, s, n);
    cur.origin = at_origin && cur.n ? 1 : 0;
    for (int k = 0; k < t->n_pre; k++) {
        const pre_step_t *st = &t->pre[k];
        pieces_t next = {0};
        for (size_t i = 0; i < cur.n; i++) {
            const char *p = cur.buf.s + cur.start[i];
            size_t len = cur.end[i] - cur.start[i], before = next.n;
            int origin = cur.origin == i + 1, first_kept = 1;
            if (st->kind == PRE_SPLIT || st->kind == PRE_PUNCT) {
                if (st->kind == PRE_PUNCT) char_segments(c, p, len, UINT32_MAX);
                else if (regex_segments(c, st->re, p, len)) { pieces_free(&cur); pieces_free(&next); return -1; }
                split_by_behavior(c, p, st->behavior, st->invert, &next);
                first_kept = st->behavior != SPLIT_REMOVED || (c->mn && !c->mflag[0]);
            } else if (st->kind == PRE_METASPACE) {
                // spaces become the replacement; one is prepended unless the piece starts with it
                char rep[4];
                int rl = utf8_encode(st->replacement, rep);
                c->tmp.n = 0;
                uint32_t cp0 = 0;
                int starts = p[0] == ' ' || (utf8_decode(p, len, &cp0) > 0 && cp0 == st->replacement);
                if (!starts && (st->prepend == PREPEND_ALWAYS || (st->prepend == PREPEND_FIRST && origin)))
                    buf_append(&c->tmp, rep, (size_t)rl);
                for (size_t b = 0; b < len; b++) {
                    if (p[b] == ' ') buf_append(&c->tmp, rep, (size_t)rl);
                    else buf_append(&c->tmp, p + b, 1);
                }
                if (st->split) {
                    char_segments(c, c->tmp.s, c->tmp.n, st->replacement);
                    split_by_behavior(c, c->tmp.s, SPLIT_MERGED_NEXT, 0, &next);
                } else {
                    pieces_add(&next, c->tmp.s, c->tmp.n);
                }
            } else {
                // ByteLevel: optional prefix space, GPT-2 regex split, then each byte as its visible character.
                c->tmp.n = 0;
                if (st->add_prefix_space && p[0] != ' ') buf_append(&c->tmp, " ", 1);
                buf_append(&c->tmp, p, len);
                pieces_t raw = {0};
                if (st->use_regex) {
                    if (regex_segments(c, st->re, c->tmp.s, c->tmp.n)) {
                        pieces_free(&cur); pieces_free(&next); pieces_free(&raw);
                        return -1;
                    }
                    split_by_behavior(c, c->tmp.s, SPLIT_ISOLATED, 0, &raw);
                } else {
                    pieces_add(&raw, c->tmp.s, c->tmp.n);
                }
                for (size_t j = 0; j < raw.n; j++) {
                    buf_t mapped = {0};
                    for (size_t b = raw.start[j]; b < raw.end[j]; b++) {
                        char u[4];
                        buf_append(&mapped, u, (size_t)utf8_encode(byte_to_cp[(unsigned char)raw.buf.s[b]], u));
                    }
                    pieces_add(&next, mapped.s, mapped.n);
                    free(mapped.s);
                }
                pieces_free(&raw);
            }
            if (origin && first_kept && next.n > before) next.origin = before + 1;
        }
        pieces_free(&cur);
        cur = next;
    }
    for (size_t i = 0; i < cur.n; i++) pieces_add(out, cur.buf.s + cur.start[i], cur.end[i] - cur.start[i]);
    pieces_free(&cur);
    return 0;
}

// ---- BPE on one piece: the `tokenizers` Word::merge_all algorithm ----
struct bpe_sym {
    int32_t id;
    int32_t prev, next;  // linked list over the symbol array; -1 at the ends
    int32_t len;         // bytes covered; 0 once merged into the symbol on its left
};
struct bpe_merge {
    uint32_t rank;
    int32_t pos;  // the left symbol
    int32_t new_id;
};

// Min-heap on (rank, pos): the lowest rank merges first, the leftmost pair on ties.
static int merge_less(const struct bpe_merge *a, const struct bpe_merge *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->pos < b->pos;
}
static void heap_push(encode_ctx_t *c, size_t *n, struct bpe_merge m) {
    if (*n == c->heap_cap) {
        c->heap_cap = c->heap_cap ? 2 * c->heap_cap : 64;
        c->heap = cispo_realloc(c->heap, c->heap_cap * sizeof *c->heap);
    }
    size_t i = (*n)++;
    while (i > 0 && merge_less(&m, &c->heap[(i - 1) / 2])) {
        c->heap[i] = c->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    c->heap[i] = m;
}
static struct bpe_merge heap_pop(encode_ctx_t *c, size_t *n) {
    struct bpe_merge top = c->heap[0], last = c->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct bpe_merge *best = &last;
        if (l < *n && merge_less(&c->heap[l], best)) { m = l; best = &c->heap[l]; }
        if (r < *n && merge_less(&c->heap[r], best)) m = r;
        if (m == i) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (*n) c->heap[i] = last;
    return top;
}

static void sym_add(encode_ctx_t *c, size_t *n, int32_t id, int32_t len) {
    if (*n == c->sym_cap) {
        c->sym_cap = c->sym_cap ? 2 * c->sym_cap : 64;
        c->sym = cispo_realloc(c->sym, c->sym_cap * sizeof *c->sym);
    }
    c->sym[*n] = (struct bpe_sym){id, (int32_t)*n - 1, (int32_t)*n + 1, len};
    (*n)++;
}

static void bpe_piece(const tokenizer_t *t, encode_ctx_t *c, const char *w, size_t n, token_ids_t *out) {
    if (n == 0) return;
    if (t->ignore_merges) {
        const int32_t *id = smap_get(&t->vocab, w, n);
        if (id) { token_ids_push(out, *id); return; }
    }
    // Characters to symbols (BPE::merge_word): vocabulary, else byte fallback, else unk, else dropped.
    size_t ns = 0;
    int32_t unk_id = -1, unk_len = 0;  // a pending (possibly fused) unknown
    size_t plen = strlen(t->subword_prefix), slen = strlen(t->word_suffix);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int l = utf8_decode(w + i, n - i, &cp);
        if (l <= 0) l = 1;  // not reached: the input was validated
        const char *s = w + i;
        size_t sl = (size_t)l;
        if ((i > 0 && plen) || (i + (size_t)l == n && slen)) {
            c->tmp.n = 0;
            if (i > 0) buf_append(&c->tmp, t->subword_prefix, plen);
            buf_append(&c->tmp, w + i, (size_t)l);
            if (i + (size_t)l == n) buf_append(&c->tmp, t->word_suffix, slen);
            s = c->tmp.s;
            sl = c->tmp.n;
        }
        const int32_t *id = smap_get(&t->vocab, s, sl);
        if (id) {
            if (unk_id >= 0) { sym_add(c, &ns, unk_id, unk_len); unk_id = -1; }
            sym_add(c, &ns, *id, l);
        } else {
            int done = 0;
            if (t->byte_fallback) {
                int all = 1;
                for (size_t b = 0; b < sl; b++) all &= t->byte_ids[(unsigned char)s[b]] >= 0;
                if (all) {
                    for (size_t b = 0; b < sl; b++) sym_add(c, &ns, t->byte_ids[(unsigned char)s[b]], 1);
                    done = 1;
                }
            }
            if (!done && t->unk_id >= 0) {
                if (unk_id >= 0 && t->fuse_unk) unk_len += l;
                else {
                    if (unk_id >= 0) sym_add(c, &ns, unk_id, unk_len);
                    unk_id = t->unk_id;
                    unk_len = l;
                }
            }
        }
        i += (size_t)l;
    }
    if (unk_id >= 0) sym_add(c, &ns, unk_id, unk_len);
    if (ns == 0) return;
    c->sym[ns - 1].next = -1;
    struct bpe_sym *sy = c->sym;
    size_t hn = 0;
    for (size_t i = 0; i + 1 < ns; i++) {
        const pmap_slot_t *m = pmap_get(&t->merges, sy[i].id, sy[i + 1].id);
        if (m) heap_push(c, &hn, (struct bpe_merge){m->rank, (int32_t)i, m->new_id});
    }
    while (hn) {
        struct bpe_merge top = heap_pop(c, &hn);
        struct bpe_sym *cur = &c->sym[top.pos];
        if (cur->len == 0 || cur->next == -1) continue;
        int32_t next_pos = cur->next;
        struct bpe_sym right = c->sym[next_pos];
        const pmap_slot_t *m = pmap_get(&t->merges, cur->id, right.id);
        if (!m || m->new_id != top.new_id) continue;  // a stale entry: the pair changed since
        cur->id = top.new_id;
        cur->len += right.len;
        cur->next = right.next;
        c->sym[next_pos].len = 0;
        if (right.next >= 0) c->sym[right.next].prev = top.pos;
        if (cur->prev >= 0) {
            const pmap_slot_t *pm = pmap_get(&t->merges, c->sym[cur->prev].id, cur->id);
            if (pm) heap_push(c, &hn, (struct bpe_merge){pm->rank, cur->prev, pm->new_id});
        }
        if (cur->next >= 0) {
            const pmap_slot_t *nm = pmap_get(&t->merges, cur->id, c->sym[cur->next].id);
            if (nm) heap_push(c, &hn, (struct bpe_merge){nm->rank, top.pos, nm->new_id});
        }
    }
    for (size_t i = 0; i < ns; i++)
        if (c->sym[i].len) token_ids_push(out, c->sym[i].id);
}

// ---- added tokens: split the text around them ----

// Segments of text: id >= 0 for an added token, -1 for text still to pre-tokenize.
typedef struct {
    size_t *start, *end;
    int32_t *id;
    size_t n, cap;
} segs_t;

static void segs_add(segs_t *g, size_t s, size_t e, int32_t id) {
    if (s == e) return;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->start = cispo_realloc(g->start, g->cap * sizeof(size_t));
        g->end = cispo_realloc(g->end, g->cap * sizeof(size_t));
        g->id = cispo_realloc(g->id, g->cap * sizeof(int32_t));
    }
    g->start[g->n] = s;
    g->end[g->n] = e;
    g->id[g->n++] = id;
}

static int is_word_char(const tokenizer_t *t, const char *s, size_t n) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->word_char, NULL);
    int rc = pcre2_match(t->word_char, (PCRE2_SPTR)s, n, 0, PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, md, NULL);
    pcre2_match_data_free(md);
    return rc > 0;
}

// AddedVocabulary::find_matches over text[from, to) with the tokens whose normalized flag is
// `normalized`: leftmost-longest matches, then single_word, lstrip and rstrip.
static void added_split(const tokenizer_t *t, const char *text, size_t from, size_t to, int normalized,
                        segs_t *out) {
    size_t start_offset = from;
    for (size_t i = from; i < to;) {
        int best = -1;
        unsigned char b0 = (unsigned char)text[i];
        for (int q = t->first_at[b0]; q < t->first_at[b0 + 1]; q++) {
            int k = t->by_first[q];
            const added_token_t *a = &t->added[k];
            if (a->normalized != normalized || a->len == 0 || a->len > to - i || (best >= 0 && a->len <= t->added[best].len))
                continue;
            if (!memcmp(text + i, a->content, a->len)) best = k;
        }
        if (best < 0) { i++; continue; }
        const added_token_t *a = &t->added[best];
        size_t ms = i, me = i + a->len;
        i = me;  // the matcher moves past this match even when the checks below reject it
        if (a->single_word) {
            // The characters just before and after must not be word characters.
            size_t b = ms;
            while (b > from && utf8_is_cont((unsigned char)text[b - 1])) b--;
            if (b > from) b--;
            int before_word = ms > from && is_word_char(t, text + b, ms - b);
            int after_word = me < to && is_word_char(t, text + me, to - me);
            if (before_word || after_word) continue;
        }
        if (a->lstrip) {
            size_t s = ms;
            while (s > from) {
                size_t b = s - 1;
                while (b > from && utf8_is_cont((unsigned char)text[b])) b--;
                uint32_t cp;
                if (utf8_decode(text + b, s - b, &cp) <= 0 || !is_unicode_space(cp)) break;
                s = b;
            }
            ms = s > start_offset ? s : start_offset;
        }
        if (a->rstrip) {
            uint32_t cp;
            int l;
            while (me < to && (l = utf8_decode(text + me, to - me, &cp)) > 0 && is_unicode_space(cp))
                me += (size_t)l;
            i = me;
        }
        segs_add(out, start_offset, ms, -1);
        segs_add(out, ms, me, a->id);
        start_offset = me;
    }
    segs_add(out, start_offset, to, -1);
}

int tokenizer_encode(const tokenizer_t *t, const char *text, size_t len, token_ids_t *out, int flags) {
    size_t bad;
    if (!utf8_valid(text, len, &bad)) return cispo_fail("tokenizer_encode: text is not valid UTF-8 at byte %zu", bad);
    encode_ctx_t c = {0};
    pcre2_code *any_re = NULL;
    for (int k = 0; k < t->n_pre && !any_re; k++) any_re = t->pre[k].re;
    if (any_re) c.md = pcre2_match_data_create(4, NULL);
    // Two passes, as `tokenizers`: tokens with normalized=false on the raw text; then each gap is
    // normalized and split around the normalized=true tokens.
    segs_t raw = {0};
    added_split(t, text, 0, len, 0, &raw);
    token_ids_t body = {0};
    int rc = 0;
    for (size_t i = 0; i < raw.n && !rc; i++) {
        if (raw.id[i] >= 0) {
            token_ids_push(&body, raw.id[i]);
            continue;
        }
        const char *base = text;
        size_t b0 = raw.start[i], b1 = raw.end[i];
        char *norm = NULL;
        if (t->norm) {
            size_t nl = 0;
            norm = tok_normalizer_apply(t->norm, text + b0, b1 - b0, &nl);
            if (!norm) {
                rc = cispo_fail("tokenizer_encode: normalizer failed on the text at byte %zu", b0);
                break;
            }
            base = norm, b0 = 0, b1 = nl;
        }
        segs_t segs = {0};
        added_split(t, base, b0, b1, 1, &segs);
        for (size_t k = 0; k < segs.n && !rc; k++) {
            if (segs.id[k] >= 0) {
                token_ids_push(&body, segs.id[k]);
                continue;
            }
            pieces_t pieces = {0};
            int at_origin = raw.start[i] == 0 && segs.start[k] == 0;
            rc = pre_tokenize(t, &c, base + segs.start[k], segs.end[k] - segs.start[k], at_origin, &pieces);
            for (size_t j = 0; j < pieces.n && !rc; j++)
                bpe_piece(t, &c, pieces.buf.s + pieces.start[j], pieces.end[j] - pieces.start[j], &body);
            pieces_free(&pieces);
        }
        free(segs.start); free(segs.end); free(segs.id);
        free(norm);
    }
    if (!rc) {
        // Post-processors apply in turn, each wrapping the output of the one before.
        if (flags & TOKENIZER_ADD_SPECIAL) {
            for (int k = 0; k < t->n_post; k++) {
                token_ids_t next = {0};
                for (int j = 0; j < t->post[k].n; j++) {
                    if (t->post[k].items[j] != POST_SEQ_A) token_ids_push(&next, t->post[k].items[j]);
                    else
                        for (size_t q = 0; q < body.n; q++) token_ids_push(&next, body.ids[q]);
                }
                token_ids_free(&body);
                body = next;
            }
        }
        for (size_t q = 0; q < body.n; q++) token_ids_push(out, body.ids[q]);
    }
    token_ids_free(&body);
    free(raw.start); free(raw.end); free(raw.id);
    pcre2_match_data_free(c.md);
    free(c.mstart); free(c.mend); free(c.mflag);
    free(c.sym); free(c.heap); free(c.tmp.s);
    return rc;
}

// ============================================ decoding ============================================

// The token strings during decoding: the decoder steps map one list to the next, as `tokenizers`'
// Decoder::decode_chain, and the last list is joined.
typedef struct {
    buf_t *s;  // [n]
    size_t n, cap;
} toklist_t;

static buf_t *toklist_add(toklist_t *l) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->s = cispo_realloc(l->s, l->cap * sizeof *l->s);
    }
    buf_t *b = &l->s[l->n++];
    *b = (buf_t){0};
    buf_init(b);
    return b;
}

static void toklist_free(toklist_t *l) {
    for (size_t i = 0; i < l->n; i++) buf_free(&l->s[i]);
    free(l->s);
    *l = (toklist_t){0};
}

// The byte of a ByteFallback token "<0xNN>" (Rust's u8::from_str_radix on NN, so "+F" counts), or -1.
static int fallback_byte(const buf_t *b) {
    if (b->n != 6 || memcmp(b->s, "<0x", 3) || b->s[5] != '>') return -1;
    int v = 0;
    for (int k = 3; k < 5; k++) {
        char c = b->s[k];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0 && !(k == 3 && c == '+')) return -1;
        v = 16 * v + (d < 0 ? 0 : d);
    }
    return v;
}

// ByteFallback's flush of collected bytes: one token when they are UTF-8, else one U+FFFD per byte
// (lossy) or the raw bytes (a stream may be cut inside a character).
static void flush_bytes(toklist_t *out, buf_t *bytes, int lossy) {
    if (!bytes->n) return;
    if (utf8_valid(bytes->s, bytes->n, NULL) || !lossy) buf_append(toklist_add(out), bytes->s, bytes->n);
    else
        for (size_t k = 0; k < bytes->n; k++) buf_append(toklist_add(out), "\xEF\xBF\xBD", 3);
    bytes->n = 0;
}

// The character at s[i] (an invalid byte counts as one character of its own).
static size_t char_len(const char *s, size_t n, size_t i, uint32_t *cp) {
    int l = utf8_decode(s + i, n - i, cp);
    if (l <= 0) {
        *cp = 0xFFFFFFFFu;
        return 1;
    }
    return (size_t)l;
}

static void decode_step(const tokenizer_t *t, const dec_step_t *d, toklist_t *in, toklist_t *out, int lossy) {
    if (d->kind == DEC_BYTELEVEL || d->kind == DEC_FUSE) {
        buf_t *o = toklist_add(out), raw = {0};
        for (size_t i = 0; i < in->n; i++) {
            const buf_t *tok = &in->s[i];
            if (d->kind == DEC_FUSE) { buf_append(&raw, tok->s, tok->n); continue; }
            // every character back to its byte; a token with a character outside the table (an added
            // token such as "数学") is kept as its own UTF-8
            size_t mark = raw.n;
            for (size_t k = 0; k < tok->n;) {
                uint32_t cp;
                k += char_len(tok->s, tok->n, k, &cp);
                if (cp >= 324 || cp_to_byte[cp] < 0) {
                    raw.n = mark;
                    buf_append(&raw, tok->s, tok->n);
                    break;
                }
                char byte = (char)cp_to_byte[cp];
                buf_append(&raw, &byte, 1);
            }
        }
        if (lossy && d->kind == DEC_BYTELEVEL) utf8_append_lossy(o, raw.s, raw.n);  // String::from_utf8_lossy
        else buf_append(o, raw.s, raw.n);
        buf_free(&raw);
        return;
    }
    if (d->kind == DEC_BYTEFALLBACK) {
        buf_t bytes = {0};
        for (size_t i = 0; i < in->n; i++) {
            int b = fallback_byte(&in->s[i]);
            if (b >= 0) {
                char c = (char)b;
                buf_append(&bytes, &c, 1);
                continue;
            }
            flush_bytes(out, &bytes, lossy);
            buf_append(toklist_add(out), in->s[i].s, in->s[i].n);
        }
        flush_bytes(out, &bytes, lossy);
        buf_free(&bytes);
        return;
    }
    encode_ctx_t c = {0};
    if (d->re) c.md = pcre2_match_data_create(4, NULL);
    for (size_t i = 0; i < in->n; i++) {
        const buf_t *tok = &in->s[i];
        buf_t *o = toklist_add(out);
        if (d->kind == DEC_METASPACE) {
            // every replacement character becomes a space, except in the first token, where it is dropped
            // (it was prepended) unless the scheme is never
            for (size_t k = 0; k < tok->n;) {
                uint32_t cp;
                size_t l = char_len(tok->s, tok->n, k, &cp);
                if (cp != d->ch) buf_append(o, tok->s + k, l);
                else if (!(i == 0 && d->prepend != PREPEND_NEVER)) buf_append(o, " ", 1);
                k += l;
            }
        } else if (d->kind == DEC_STRIP) {
            size_t cut_l = 0, cut_r = tok->n, k = 0;
            for (size_t q = 0; q < d->start && k < tok->n; q++) {
                uint32_t cp;
                size_t l = char_len(tok->s, tok->n, k, &cp);
                if (cp != d->ch) break;
                k += l;
                cut_l = k;
            }
            for (size_t q = 0; q < d->stop && cut_r > cut_l; q++) {
                size_t b = cut_r - 1;
                while (b > cut_l && utf8_is_cont((unsigned char)tok->s[b])) b--;
                uint32_t cp;
                char_len(tok->s, cut_r, b, &cp);
                if (cp != d->ch) break;
                cut_r = b;
            }
            buf_append(o, tok->s + cut_l, cut_r - cut_l);
        } else if (d->literal) {  // DEC_REPLACE, String pattern: left to right, non-overlapping
            size_t pl = strlen(d->literal), k = 0;
            while (k < tok->n) {
                const char *hit = tok->n - k >= pl ? memmem(tok->s + k, tok->n - k, d->literal, pl) : NULL;
                if (!hit) break;
                buf_append(o, tok->s + k, (size_t)(hit - tok->s) - k);
                buf_puts(o, d->content);
                k = (size_t)(hit - tok->s) + pl;
            }
            buf_append(o, tok->s + k, tok->n - k);
        } else {  // DEC_REPLACE, Regex pattern (tokens of valid UTF-8 only; others pass unchanged)
            if (!utf8_valid(tok->s, tok->n, NULL) || regex_segments(&c, d->re, tok->s, tok->n)) {
                cispo_clear_error();
                buf_append(o, tok->s, tok->n);
                continue;
            }
            for (size_t k = 0; k < c.mn; k++) {
                if (c.mflag[k]) buf_puts(o, d->content);
                else buf_append(o, tok->s + c.mstart[k], c.mend[k] - c.mstart[k]);
            }
        }
    }
    pcre2_match_data_free(c.md);
    free(c.mstart); free(c.mend); free(c.mflag);
    (void)t;
}

char *tokenizer_decode(const tokenizer_t *t, const int32_t *ids, size_t n, int flags, size_t *len_out) {
    toklist_t cur = {0};
    for (size_t i = 0; i < n; i++) {
        const char *tok = tokenizer_id_to_token(t, ids[i]);
        if (!tok || ((flags & TOKENIZER_SKIP_SPECIAL) && tokenizer_is_special(t, ids[i]))) continue;
        buf_puts(toklist_add(&cur), tok);
    }
    for (int k = 0; k < t->n_dec; k++) {
        toklist_t next = {0};
        decode_step(t, &t->dec[k], &cur, &next, flags & TOKENIZER_LOSSY);
        toklist_free(&cur);
        cur = next;
    }
    buf_t raw = {0};
    buf_init(&raw);
    for (size_t i = 0; i < cur.n; i++) {
        if (i && !t->n_dec) buf_append(&raw, " ", 1);  // no decoder: tokens joined by spaces
        buf_append(&raw, cur.s[i].s, cur.s[i].n);
    }
    toklist_free(&cur);
    if (flags & TOKENIZER_LOSSY) {
        buf_t clean = {0};
        buf_init(&clean);
        utf8_append_lossy(&clean, raw.s, raw.n);
        buf_free(&raw);
        raw = clean;
    }
    return buf_take(&raw, len_out);
}
