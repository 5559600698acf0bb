// trainer/cmd_tokenize.c — `cispo tokenize`: encodes stdin with a tokenizer.json, or decodes ids.
//   cispo tokenize --tokenizer FILE [--add-special]          text on stdin -> ids, one line
//   cispo tokenize --tokenizer FILE --decode [--skip-special] ids on stdin -> text (raw bytes)
//   cispo tokenize --tokenizer FILE --jsonl [--decode] ...   one JSON string per line -> one JSON id
//                                                            array per line (or the reverse)
// defines: cmd_tokenize
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: cispo tokenize --tokenizer FILE [--decode] [--jsonl] [--add-special] [--skip-special] [--info]\n"
               "  encodes the text on stdin to ids (one line, space separated), or with --decode the ids on\n"
               "  stdin back to text. --jsonl: each input line is a JSON string (encode) or a JSON array of\n"
               "  ids (decode), one output line each; decoded text is then made valid UTF-8 (U+FFFD).\n"
               "  --add-special applies the tokenizer's post-processor (e.g. BOS); --skip-special drops\n"
               "  special tokens when decoding. --info prints the vocabulary size and eos/bos ids.\n");
}

static char *read_stdin(size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = cispo_malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, stdin)) > 0) {
        n += got;
        if (n + 1 >= cap) buf = cispo_realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

// Parses whitespace-separated ids; -1 on a token that is not an integer.
static int parse_ids(const char *s, token_ids_t *ids) {
    char *end;
    for (;;) {
        while (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r' || *s == ',') s++;
        if (!*s) return 0;
        long v = strtol(s, &end, 10);
        if (end == s) return cispo_fail("tokenize --decode: stdin: '%.20s' is not a token id", s);
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

static int run_jsonl(const tokenizer_t *tok, int decode, int flags) {
    size_t len;
    char *in = read_stdin(&len);
    int rc = 0, lineno = 0;
    for (char *line = in, *next; line && *line && !rc; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        lineno++;
        if (!*line) continue;
        cJSON *j = cJSON_Parse(line);
        token_ids_t ids = {0};
        if (!decode) {
            if (!cJSON_IsString(j)) rc = cispo_fail("tokenize --jsonl: stdin line %d: expected a JSON string", lineno);
            else if (tokenizer_encode(tok, j->valuestring, strlen(j->valuestring), &ids, flags)) rc = -1;
            for (size_t i = 0; !rc && i < ids.n; i++) printf("%s%d", i ? "," : "[", ids.ids[i]);
            if (!rc) printf(ids.n ? "]\n" : "[]\n");
        } else {
            if (!cJSON_IsArray(j)) rc = cispo_fail("tokenize --jsonl --decode: stdin line %d: expected an array of ids", lineno);
            for (const cJSON *e = j ? j->child : NULL; e && !rc; e = e->next) token_ids_push(&ids, (int32_t)e->valuedouble);
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
    const char *path = NULL;
    int decode = 0, jsonl = 0, info = 0, flags = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) path = argv[++i];
        else if (!strcmp(argv[i], "--decode")) decode = 1;
        else if (!strcmp(argv[i], "--jsonl")) jsonl = 1;
        else if (!strcmp(argv[i], "--info")) info = 1;
        else if (!strcmp(argv[i], "--add-special")) flags |= TOKENIZER_ADD_SPECIAL;
        else if (!strcmp(argv[i], "--skip-special")) flags |= TOKENIZER_SKIP_SPECIAL;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return 0; }
        else { fprintf(stderr, "cispo tokenize: unknown argument '%s'\n", argv[i]); usage(stderr); return 2; }
    }
    if (!path) { usage(stderr); return 2; }
    tokenizer_t *tok = tokenizer_load(path);
    if (!tok) { fprintf(stderr, "cispo tokenize: %s\n", cispo_last_error()); return 1; }
    int rc = 0;
    if (info) {
        printf("vocab_size %d\neos %d\nbos %d\n", tokenizer_vocab_size(tok), tokenizer_eos_id(tok), tokenizer_bos_id(tok));
    } else if (jsonl) {
        rc = run_jsonl(tok, decode, flags);
    } else {
        size_t len;
        char *in = read_stdin(&len);
        token_ids_t ids = {0};
        if (!decode) {
            rc = tokenizer_encode(tok, in, len, &ids, flags);
            for (size_t i = 0; !rc && i < ids.n; i++) printf(i ? " %d" : "%d", ids.ids[i]);
            if (!rc) printf("\n");
        } else if (!(rc = parse_ids(in, &ids))) {
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
