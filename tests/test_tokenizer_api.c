// tests/test_tokenizer_api.c — the C API of model/tokenizer.h without Python: a hand-made
// tokenizer.json whose ids are worked out by hand (and were confirmed with the `tokenizers`
// package), the shipped demo tokenizer's known ids for a demo prompt, lookups (token <-> id, special,
// eos/bos, vocab size), decode flags (skip special, lossy), and load/encode errors.
// The full parity test against `tokenizers` is tests/test_tokenizer.py.
// Run: build/test_tokenizer_api (from the repo root).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "model/tokenizer.h"
#include "tests/testutil.h"

static char tmpdir[] = "/tmp/cispo_test_tokenizer_XXXXXX";

// Merges ranked "a b" < "ab c" < "Ġ a" < "Ġa b" < "b c"; <mask> strips spaces on its left; "xyz" is
// a non-special added token. Both merge formats are used ("a b" strings here, pairs below).
static const char *HAND =
    "{\"added_tokens\": ["
    "{\"id\": 12, \"content\": \"<s>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},"
    "{\"id\": 13, \"content\": \"</s>\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, \"special\": true},"
    "{\"id\": 14, \"content\": \"<mask>\", \"single_word\": false, \"lstrip\": true, \"rstrip\": false, \"normalized\": false, \"special\": true},"
    "{\"id\": 15, \"content\": \"xyz\", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": true, \"special\": false}],"
    " \"normalizer\": null,"
    " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": true},"
    " \"post_processor\": {\"type\": \"TemplateProcessing\","
    "  \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},"
    "             {\"SpecialToken\": {\"id\": \"</s>\", \"type_id\": 0}}],"
    "  \"pair\": [{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}],"
    "  \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [12], \"tokens\": [\"<s>\"]},"
    "                     \"</s>\": {\"id\": \"</s>\", \"ids\": [13], \"tokens\": [\"</s>\"]}}},"
    " \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},"
    " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"\\u0120\": 3, \"ab\": 4, \"abc\": 5, \"\\u0120a\": 6,"
    "  \"x\": 7, \"y\": 8, \"z\": 9, \"\\u0120ab\": 10, \"bc\": 11},"
    "  \"merges\": [MERGES]}}";

static const char *write_json(const char *name, const char *merges, const char *cut_from, const char *paste) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    // HAND with MERGES replaced, then optionally everything from cut_from on replaced by paste.
    char text[4096];
    const char *m = strstr(HAND, "MERGES");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(m - HAND), HAND, merges, m + 6);
    char *cut = cut_from ? strstr(text, cut_from) : NULL;
    if (cut) snprintf(cut, sizeof text - (size_t)(cut - text), "%s", paste);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static int ids_equal(const token_ids_t *t, const int32_t *want, size_t n) {
    return t->n == n && (n == 0 || !memcmp(t->ids, want, n * sizeof *want));
}

static void check_encode(const tokenizer_t *tok, const char *text, int flags, const int32_t *want, size_t n) {
    token_ids_t t = {0};
    int rc = tokenizer_encode(tok, text, strlen(text), &t, flags);
    char got[256] = "";
    for (size_t i = 0; i < t.n && strlen(got) < 200; i++) snprintf(got + strlen(got), sizeof got - strlen(got), " %d", t.ids[i]);
    test_check(rc == 0 && ids_equal(&t, want, n), "encode '%s' (flags %d): got%s", text, flags, got);
    token_ids_free(&t);
}

static void test_hand(void) {
    static const char *merge_forms[2] = {"\"a b\", \"ab c\", \"\\u0120 a\", \"\\u0120a b\", \"b c\"",
                                         "[\"a\", \"b\"], [\"ab\", \"c\"], [\"\\u0120\", \"a\"], [\"\\u0120a\", \"b\"], [\"b\", \"c\"]"};
    for (int form = 0; form < 2; form++) {
        tokenizer_t *tok = tokenizer_load(write_json("hand.json", merge_forms[form], NULL, NULL));
        if (!test_check(tok != NULL, "hand tokenizer loads (merge form %d): %s", form, cispo_last_error())) continue;
        // "abc" -> a b c -> ab c (rank 0) -> abc (rank 1). " ab" -> Ġ a b: "a b" (rank 0) beats "Ġ a"
        // (rank 2), and "Ġ ab" is no merge, so Ġ + ab.
        check_encode(tok, "abc ab abc", 0, (int32_t[]){5, 3, 4, 3, 5}, 5);
        check_encode(tok, "bcab", 0, (int32_t[]){11, 4}, 2);           // "a b" (rank 0) before "b c" (rank 4)
        check_encode(tok, "a <mask>b", 0, (int32_t[]){0, 14, 1}, 3);   // lstrip swallows the space
        check_encode(tok, "axyzb", 0, (int32_t[]){0, 15, 1}, 3);       // added token inside a word
        check_encode(tok, "<s>abc</s>", 0, (int32_t[]){12, 5, 13}, 3);
        check_encode(tok, "adb", 0, (int32_t[]){4}, 1);                // 'd' is in no vocabulary: dropped
        check_encode(tok, "abc", TOKENIZER_ADD_SPECIAL, (int32_t[]){12, 5, 13}, 3);
        check_encode(tok, "", 0, NULL, 0);
        // Appending: a second encode adds to the same list.
        token_ids_t t = {0};
        tokenizer_encode(tok, "ab", 2, &t, 0);
        tokenizer_encode(tok, "c", 1, &t, 0);
        test_check(ids_equal(&t, (int32_t[]){4, 2}, 2), "encode appends");
        token_ids_free(&t);

        int32_t ids[] = {12, 5, 13, 15};
        size_t n;
        char *s = tokenizer_decode(tok, ids, 4, 0, &n);
        test_check(!strcmp(s, "<s>abc</s>xyz") && n == 13, "decode keeps special tokens: '%s'", s);
        free(s);
        s = tokenizer_decode(tok, ids, 4, TOKENIZER_SKIP_SPECIAL, NULL);
        test_check(!strcmp(s, "abcxyz"), "decode skipping special tokens: '%s'", s);
        free(s);
        int32_t odd[] = {3, 99, -1, 0};
        s = tokenizer_decode(tok, odd, 4, 0, NULL);
        test_check(!strcmp(s, " a"), "ids outside the vocabulary are skipped: '%s'", s);
        free(s);

        test_check(tokenizer_vocab_size(tok) == 16, "vocab size 16 (%d)", tokenizer_vocab_size(tok));
        test_check(tokenizer_token_to_id(tok, "\xC4\xA0" "ab") == 10 && tokenizer_token_to_id(tok, "xyz") == 15 &&
                   tokenizer_token_to_id(tok, "nope") == -1, "token_to_id");
        test_check(!strcmp(tokenizer_id_to_token(tok, 14), "<mask>") && !strcmp(tokenizer_id_to_token(tok, 6), "\xC4\xA0" "a") &&
                   tokenizer_id_to_token(tok, 16) == NULL && tokenizer_id_to_token(tok, -3) == NULL, "id_to_token");
        test_check(tokenizer_special_id(tok, "</s>") == 13 && tokenizer_special_id(tok, "xyz") == -1 &&
                   tokenizer_special_id(tok, "abc") == -1, "special_id: special added tokens only");
        test_check(tokenizer_is_special(tok, 12) && !tokenizer_is_special(tok, 15) && !tokenizer_is_special(tok, 5),
                   "is_special");
        test_check(tokenizer_eos_id(tok) == 13 && tokenizer_bos_id(tok) == 12, "eos </s> = 13, bos <s> = 12 by name (%d, %d)",
                   tokenizer_eos_id(tok), tokenizer_bos_id(tok));
        test_check(tokenizer_encode(tok, "ab\xff" "c", 4, &t, 0) == -1 && strstr(cispo_last_error(), "byte 2"),
                   "invalid UTF-8 refused at its byte: %s", cispo_last_error());
        test_check(tokenizer_encode(tok, "\xED\xA0\x80", 3, &t, 0) == -1, "a UTF-16 surrogate is invalid UTF-8");
        token_ids_free(&t);
        tokenizer_free(tok);
    }
}

static void test_errors(void) {
    const char *good = "\"a b\", \"ab c\", \"\\u0120 a\", \"\\u0120a b\", \"b c\"";
    struct { const char *merges, *cut, *paste, *want; } cases[] = {
        {"\"a b\", \"a q\"", NULL, NULL, "key 'model.merges[1]': token 'q' is not in model.vocab"},
        {"\"a b\", \"b c\", \"z z\"", NULL, NULL, "key 'model.merges[2]': token 'zz' is not in model.vocab"},
        {"\"a b\", 7", NULL, NULL, "key 'model.merges[1]': expected"},
        {good, "\"model\"", "\"modle\": {}}", "key 'model': missing"},
        {good, "\"model\"", "\"model\": {\"type\": \"Unigram\", \"vocab\": []}}", "key 'model.type': model 'Unigram'"},
        {good, "\"model\"", "\"model\": {\"type\": \"BPE\", \"merges\": []}}", "key 'model.vocab': missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = write_json("bad.json", cases[i].merges, cases[i].cut, cases[i].paste);
        tokenizer_t *tok = tokenizer_load(path);
        const char *err = cispo_last_error();
        test_check(tok == NULL && strstr(err, path) && strstr(err, cases[i].want), "bad file %zu: '%s' wants '%s'", i, err,
                   cases[i].want);
        tokenizer_free(tok);
    }
    tokenizer_t *tok = tokenizer_load("/nonexistent/tokenizer.json");
    test_check(tok == NULL && strstr(cispo_last_error(), "/nonexistent/tokenizer.json"), "missing file named: %s",
               cispo_last_error());
}

// The shipped demo tokenizer: ids of a demo prompt and an SFT text, confirmed with `tokenizers`.
static void test_demo(void) {
    tokenizer_t *tok = tokenizer_load("configs/tokenizers/demo/tokenizer.json");
    if (!test_check(tok != NULL, "demo tokenizer loads: %s", cispo_last_error())) return;
    test_check(tokenizer_vocab_size(tok) == 512, "demo vocab 512 (%d)", tokenizer_vocab_size(tok));
    test_check(tokenizer_eos_id(tok) == 0 && tokenizer_special_id(tok, "<|endoftext|>") == 0, "demo eos <|endoftext|> = 0");
    test_check(tokenizer_bos_id(tok) == -1, "demo has no bos (%d)", tokenizer_bos_id(tok));
    check_encode(tok, "Compute 7+5*3-4.\n", 0, (int32_t[]){278, 221, 23, 11, 21, 10, 19, 13, 20, 14, 199}, 11);
    check_encode(tok, "= 22-4\n= 18\nThe answer is \\boxed{18}.<|endoftext|>", 0,
                 (int32_t[]){29, 221, 18, 18, 13, 20, 199, 29, 221, 17, 24, 199, 267, 274, 272, 261, 273, 91, 17, 24, 277, 0}, 22);
    test_check(!strcmp(tokenizer_id_to_token(tok, 274), "\xC4\xA0" "answer"), "id 274 is 'Ġanswer'");
    // Two byte tokens of an unfinished 4-byte character: raw bytes, or one U+FFFD when lossy.
    int32_t part[] = {173, 254};
    size_t n;
    char *raw = tokenizer_decode(tok, part, 2, 0, &n);
    test_check(n == 2 && (unsigned char)raw[0] == 0xF0 && (unsigned char)raw[1] == 0x9F, "raw decode gives the bytes F0 9F");
    free(raw);
    char *lossy = tokenizer_decode(tok, part, 2, TOKENIZER_LOSSY, &n);
    test_check(!strcmp(lossy, "\xEF\xBF\xBD"), "lossy decode gives one U+FFFD, as `tokenizers`");
    free(lossy);
    tokenizer_free(tok);
}

int main(void) {
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    test_hand();
    test_errors();
    test_demo();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_finish("test_tokenizer_api");
}
