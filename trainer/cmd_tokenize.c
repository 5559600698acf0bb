// trainer/cmd_tokenize.c — `cispo tokenize`: encodes stdin with a tokenizer.json, or decodes ids.
//   cispo tokenize --tokenizer FILE [--add-special]          text on stdin -> ids, one line
//   cispo tokenize --tokenizer FILE --decode [--skip-special] ids on stdin -> text (raw bytes)
//   cispo tokenize --tokenizer FILE --jsonl [--decode] ...   one JSON string per line -> one JSON id
//                                                            array per line (or the reverse); a
//                                                            text may hold NULs ("\u0000")
// defines: cmd_tokenize
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/fdio.h"
#include "base/utf8.h"
#include "model/tokenizer.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"

typedef struct {
    char tokenizer[4096];
    int decode, jsonl, info, add_special, skip_special;
} tokenize_opts_t;

#define O(f) offsetof(tokenize_opts_t, f)
static const keyconf_key_t tokenize_keys[] = {
    {"tokenizer", KEY_STRING, O(tokenizer), 0, 0, NULL, "", "a Hugging Face tokenizer.json (required)", 4096},
    {"decode", KEY_BOOL, O(decode), 0, 0, NULL, "false", "decode ids on stdin back to text (else encode text)", 0},
    {"jsonl", KEY_BOOL, O(jsonl), 0, 0, NULL, "false", "one JSON string (or id array with --decode) per line; decoded text made valid UTF-8", 0},
    {"info", KEY_BOOL, O(info), 0, 0, NULL, "false", "print the vocabulary size and the eos/bos/pad ids", 0},
    {"add-special", KEY_BOOL, O(add_special), 0, 0, NULL, "false", "apply the tokenizer's post-processor (e.g. BOS) when encoding", 0},
    {"skip-special", KEY_BOOL, O(skip_special), 0, 0, NULL, "false", "drop special tokens when decoding", 0},
};
#undef O

static const keyconf_cli_t tokenize_cli = {
    "cispo tokenize",
    "cispo tokenize --tokenizer FILE [--decode] [--jsonl] [--add-special] [--skip-special] [--info]",
    "  Encodes the text on stdin to ids (one line, space separated), or with --decode the ids on stdin\n"
    "  back to text.",
    tokenize_keys, sizeof tokenize_keys / sizeof tokenize_keys[0], 0};

// Parses whitespace-separated ids; -1 on a token that is not an integer.
static int parse_ids(const char *s, token_ids_t *ids, int vocab) {
    char *end;
    for (;;) {
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r' || *s == ',') s++;
        if (!*s) return 0;
        long v = strtol(s, &end, 10);
        if (end == s) return cispo_fail("tokenize --decode: stdin: '%.20s' is not a token id", s);
        if (v < 0 || v >= vocab)
            return cispo_fail("tokenize --decode: stdin: token id %ld is out of range (the tokenizer has ids 0..%d)", v,
                              vocab - 1);
        token_ids_push(ids, (int32_t)v);
        s = end;
    }
}

// Writes s[0, n) as a JSON string line (s may hold NUL bytes, which cJSON strings cannot).
static void print_json_string(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    printf("\"\n");
}

static int hex4(const char *s, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) return -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

// Decodes the JSON string literal s (a line cJSON accepted as a string) into out with its length: cJSON's
// NUL-terminated valuestring would end a text at an escaped "\u0000". Unpaired surrogates are refused.
static int json_string_bytes(const char *s, buf_t *out, int lineno) {
    while (*s == ' ' || *s == '\t' || *s == '\r') s++;
    if (*s++ != '"') return cispo_fail("tokenize --jsonl: stdin line %d: expected a JSON string", lineno);
    for (; *s && *s != '"'; s++) {
        if (*s != '\\') { buf_append(out, s, 1); continue; }
        s++;
        const char *simple = strchr("\"\\/bfnrt", *s);
        if (*s && simple) {
            static const char repl[] = "\"\\/\b\f\n\r\t";
            buf_append(out, &repl[simple - "\"\\/bfnrt"], 1);
            continue;
        }
        uint32_t cp, lo;
        if (*s != 'u' || hex4(s + 1, &cp)) return cispo_fail("tokenize --jsonl: stdin line %d: bad escape in the string", lineno);
        s += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
            if (s[1] != '\\' || s[2] != 'u' || hex4(s + 3, &lo) || lo < 0xDC00 || lo >= 0xE000)
                return cispo_fail("tokenize --jsonl: stdin line %d: unpaired surrogate \\u%04X in the string", lineno, cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            s += 6;
        } else if (cp >= 0xDC00 && cp < 0xE000) {
            return cispo_fail("tokenize --jsonl: stdin line %d: unpaired surrogate \\u%04X in the string", lineno, cp);
        }
        char u[4];
        buf_append(out, u, (size_t)utf8_encode(cp, u));
    }
    return 0;
}

static int run_jsonl(const tokenizer_t *tok, int decode, int flags) {
    size_t len;
    char *in = fdio_read_stream(stdin, &len);
    if (!in) return -1;
    int rc = 0, lineno = 0;
    for (char *line = in, *next; line && *line && !rc; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (!*line) continue;
        cJSON *j = cJSON_Parse(line);
        token_ids_t ids = {0};
        if (!decode) {
            buf_t text = {0};
            buf_init(&text);
            if (!cJSON_IsString(j)) rc = cispo_fail("tokenize --jsonl: stdin line %d: expected a JSON string", lineno);
            else if (json_string_bytes(line, &text, lineno) || tokenizer_encode(tok, text.s, text.n, &ids, flags)) rc = -1;
            buf_free(&text);
            for (size_t i = 0; !rc && i < ids.n; i++) printf("%s%d", i ? "," : "[", ids.ids[i]);
            if (!rc) printf(ids.n ? "]\n" : "[]\n");
        } else {
            if (!cJSON_IsArray(j)) rc = cispo_fail("tokenize --jsonl --decode: stdin line %d: expected an array of ids", lineno);
            for (const cJSON *e = j ? j->child : NULL; e && !rc; e = e->next) {
                if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= tokenizer_vocab_size(tok))
                    rc = cispo_fail("tokenize --jsonl --decode: stdin line %d: token id %.20g is out of range (the "
                                    "tokenizer has ids 0..%d)", lineno, e->valuedouble, tokenizer_vocab_size(tok) - 1);
                else token_ids_push(&ids, (int32_t)e->valuedouble);
            }
            if (!rc) {
                size_t n;
                char *text = tokenizer_decode(tok, ids.ids, ids.n, flags | TOKENIZER_LOSSY, &n);
                print_json_string(text, n);
                free(text);
            }
        }
        token_ids_free(&ids);
        cJSON_Delete(j);
    }
    free(in);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    tokenize_opts_t o;
    keyconf_defaults(&o, tokenize_keys, tokenize_cli.n_keys);
    int prc = keyconf_parse_cli(&tokenize_cli, &o, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo tokenize: %s\n", cispo_last_error());
        return prc < 0 ? 2 : 0;
    }
    const char *path = o.tokenizer;
    int decode = o.decode, jsonl = o.jsonl, info = o.info;
    int flags = (o.add_special ? TOKENIZER_ADD_SPECIAL : 0) | (o.skip_special ? TOKENIZER_SKIP_SPECIAL : 0);
    if (!path[0]) {
        fprintf(stderr, "cispo tokenize: --tokenizer FILE is required (`cispo tokenize --help`)\n");
        return 2;
    }
    tokenizer_t *tok = tokenizer_load(path);
    if (!tok) { fprintf(stderr, "cispo tokenize: %s\n", cispo_last_error()); return 1; }
    int rc = 0;
    if (info) {
        printf("vocab_size %d\neos %d\nbos %d\npad %d\n", tokenizer_vocab_size(tok), tokenizer_eos_id(tok),
               tokenizer_bos_id(tok), tokenizer_pad_id(tok));
    } else if (jsonl) {
        rc = run_jsonl(tok, decode, flags);
    } else {
        size_t len;
        char *in = fdio_read_stream(stdin, &len);
        token_ids_t ids = {0};
        if (!in) {
            rc = -1;
        } else if (!decode) {
            rc = tokenizer_encode(tok, in, len, &ids, flags);
            for (size_t i = 0; !rc && i < ids.n; i++) printf(i ? " %d" : "%d", ids.ids[i]);
            if (!rc) printf("\n");
        } else if (!(rc = parse_ids(in, &ids, tokenizer_vocab_size(tok)))) {
            size_t n;
            char *text = tokenizer_decode(tok, ids.ids, ids.n, flags, &n);
            fwrite(text, 1, n, stdout);
            free(text);
        }
        token_ids_free(&ids);
        free(in);
    }
    tokenizer_free(tok);
    if (rc) { fprintf(stderr, "cispo tokenize: %s\n", cispo_last_error()); return 1; }
    return 0;
}
