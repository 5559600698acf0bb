// tests/test_generate.c — `cispo generate`: on every parity fixture the greedy continuation of
// greedy.txt's prompt equals transformers' generate() (greedy.txt line 2), and --logprobs equals
// transformers' decode-time log-probs (line 3, where present) or else the training forward's
// log-probs of the continuation; text prompts decode to the text of the token path; --prompt-tokens
// --greedy stops at the end-of-sequence token its tokenizer names; --prompts (one prompt a line, generated
// together) gives each prompt the tokens it gets alone, greedy and sampled (prompt i on seed stream i); bad
// arguments and bad token files are refused with the reason.
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/common.h"
#include "model/hf.h"
#include "model/seq_logprob.h"
#include "model/tokenizer.h"
#include "tests/testutil.h"

// Runs a command; its stdout into out (cap bytes). Returns the exit status.
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char tmp_dir[] = "/tmp/cispo_test_generate_XXXXXX";  // of its own: other builds may run this test at once

static void check_fixture(const char *bin, const char *dir) {
    char path[1024], *text;
    snprintf(path, sizeof path, "%s/greedy.txt", dir);
    if (!(text = cispo_read_file(path, NULL))) return;
    char *nl = strchr(text, '\n');
    if (!test_check(nl != NULL, "%s: two lines", path)) return free(text);
    *nl = 0;
    char *want = nl + 1, *hf_lp = strchr(want, '\n');  // optional line 3: transformers' log-prob of each step
    if (hf_lp) *hf_lp++ = 0;
    if (hf_lp && !strpbrk(hf_lp, "0123456789")) hf_lp = NULL;
    int n_want = 0;
    for (char *p = want; *p;) {
        while (*p == ' ') p++;
        if (*p) n_want++;
        while (*p && *p != ' ') p++;
    }
    char tf[128];
    snprintf(tf, sizeof tf, "%s/prompt.txt", tmp_dir);
    FILE *f = fopen(tf, "w");
    fprintf(f, "%s\n", text);
    fclose(f);
    char cmd[2048], out[65536];
    snprintf(cmd, sizeof cmd, "'%s' generate --model %s --prompt-tokens %s --max-new %d --greedy --no-eos --logprobs", bin,
             dir, tf, n_want);
    int rc = run(cmd, out, sizeof out);
    char *lp_line = strchr(out, '\n');
    if (lp_line) *lp_line++ = 0;
    test_check(rc == 0 && !strcmp(out, want), "%s: greedy continuation equals transformers' generate():\n  got  %s\n  want %s",
               dir, out, want);
    // --logprobs: transformers' decode-time log-probs (line 3) where the fixture has them (rope scaling
    // that depends on the sequence length makes them differ from one full-sequence forward), else the
    // training forward of prompt + continuation
    if (lp_line && hf_lp) {
        double worst = 0;
        char *p = lp_line, *q = hf_lp;
        for (int j = 0; j < n_want; j++) worst = fmax(worst, fabs(strtod(p, &p) - strtod(q, &q)));
        TEST_LE(worst, 2e-5, "%s: --logprobs equal transformers' generate() log-probs (max diff %.3g)", dir, worst);
    } else if (lp_line) {
        model_config_t cfg;
        param_table_t t;
        float *params;
        int32_t *ids;
        int n;
        char both[8192];
        snprintf(both, sizeof both, "%s %s", text, want);
        if (!hf_load_dir(dir, &cfg, &t, &params) && !model_parse_tokens(both, "greedy.txt", cfg.vocab_size, 2, &ids, &n)) {
            model_t *m = model_create(&cfg, params, n);
            float *ref = cispo_malloc(sizeof(float) * (size_t)n);
            model_seq_logprobs(m, ids, n, ref);
            int np = n - n_want;
            double worst = 0;
            char *p = lp_line;
            for (int j = 0; j < n_want; j++) worst = fmax(worst, fabs(strtod(p, &p) - ref[np - 1 + j]));
            TEST_LE(worst, 2e-5, "%s: --logprobs equal the training forward (max diff %.3g)", dir, worst);
            free(ref), free(ids), free(params);
            model_free(m);
            param_table_free(&t);
        }
    }
    free(text);
}

// --prompt-tokens --greedy stops at the end-of-sequence token that the tokenizer names (the tiny preset's
// config names none): the greedy path without EOS is g0 g1 ...; a copy of the demo tokenizer whose
// tokenizer_config.json names g[k] (a token first seen at k >= 4) as eos_token makes the same call print
// g0..g[k] and stop, EOS kept as the last token.
static void check_eos_stop(const char *bin) {
    char cmd[4096], out[4096], tpath[600], dir[600], path[700];
    snprintf(tpath, sizeof tpath, "%s/eos_prompt.txt", tmp_dir);
    FILE *f = fopen(tpath, "w");
    fprintf(f, "100 200 300\n");  // a prompt whose greedy path varies
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' generate --model tiny --prompt-tokens %s --max-new 12 --greedy --no-eos", bin, tpath);
    int32_t g[64];
    int n = 0;
    if (!test_check(run(cmd, out, sizeof out) == 0, "greedy path without EOS: %s", out)) return;
    for (char *p = out, *e; n < 64; p = e) {
        long v = strtol(p, &e, 10);
        if (e == p) break;
        g[n++] = (int32_t)v;
    }
    if (!test_check(n == 12, "12 new tokens (%d)", n)) return;
    int k = 0;  // the first position from 4 on whose token did not occur before (g0 itself when none)
    for (int i = 4; i < n && !k; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= g[j] == g[i];
        if (!seen) k = i;
    }
    tokenizer_t *tk = tokenizer_load("configs/tokenizers/demo/tokenizer.json");
    const char *name = tk ? tokenizer_id_to_token(tk, g[k]) : NULL;
    if (!test_check(name != NULL, "token %d has a name in the demo tokenizer", g[k])) {
        tokenizer_free(tk);
        return;
    }
    snprintf(dir, sizeof dir, "%s/eos_tok", tmp_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp configs/tokenizers/demo/tokenizer.json '%s/'", dir, dir);
    if (system(cmd)) {}
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddStringToObject(cfg, "eos_token", name);
    char *js = cJSON_Print(cfg);
    f = fopen(path, "w");
    fputs(js, f);
    fclose(f);
    cJSON_free(js);
    cJSON_Delete(cfg);
    tokenizer_free(tk);
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    tk = tokenizer_load(path);
    test_check(tk && tokenizer_eos_id(tk) == g[k], "the copied tokenizer's EOS is token %d", g[k]);
    tokenizer_free(tk);
    snprintf(cmd, sizeof cmd, "'%s' generate --model tiny --prompt-tokens %s --max-new 12 --greedy --tokenizer %s 2>&1", bin,
             tpath, path);
    int rc = run(cmd, out, sizeof out);
    char want[512] = "";
    for (int i = 0; i <= k; i++) snprintf(want + strlen(want), sizeof want - strlen(want), i ? " %d" : "%d", g[i]);
    out[strcspn(out, "\n")] = 0;
    test_check(rc == 0 && !strcmp(out, want), "--greedy stops at EOS %d after %d tokens: '%s' (want '%s')", g[k], k + 1, out,
               want);
}

// --prompts FILE: every line a prompt, generated together through the engine (continuous batching over 2 slots
// for 3 prompts of different lengths); each output line equals that prompt generated alone, greedy, and
// sampled for the first prompt (seed stream 0, as --prompt-tokens uses); a bad line is named.
static void check_prompts_file(const char *bin) {
    const char *lines[3] = {"5 17 99 3 250 7 7 1", "42", "300 301 302 303"};
    char path[600], one[600], cmd[4096], all[8192], alone[4096];
    snprintf(path, sizeof path, "%s/prompts.txt", tmp_dir);
    snprintf(one, sizeof one, "%s/one.txt", tmp_dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "%s\n\n%s\n%s\n", lines[0], lines[1], lines[2]);  // a blank line is skipped
    fclose(f);
    for (int greedy = 1; greedy >= 0; greedy--) {
        snprintf(cmd, sizeof cmd, "'%s' generate --model configs/models/tiny.yaml --prompts %s --slots 2 --max-new 10 "
                 "--no-eos --seed 4 %s", bin, path, greedy ? "--greedy" : "");
        int rc = run(cmd, all, sizeof all);
        char *save = NULL, *line = strtok_r(all, "\n", &save);
        int same = rc == 0, k;
        for (k = 0; k < (greedy ? 3 : 1) && line; k++, line = strtok_r(NULL, "\n", &save)) {
            f = fopen(one, "w");
            fprintf(f, "%s\n", lines[k]);
            fclose(f);
            snprintf(cmd, sizeof cmd, "'%s' generate --model configs/models/tiny.yaml --prompt-tokens %s --max-new 10 "
                     "--no-eos --seed 4 %s", bin, one, greedy ? "--greedy" : "");
            same &= run(cmd, alone, sizeof alone) == 0 && !strncmp(line, alone, strlen(line)) &&
                    alone[strlen(line)] == '\n';
        }
        test_check(same && k == (greedy ? 3 : 1), "--prompts (%s): each line's tokens equal the prompt generated alone",
                   greedy ? "greedy, 3 prompts" : "sampled, the first prompt");
    }
    f = fopen(path, "w");
    fprintf(f, "1 2\n\n3 x\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' generate --model configs/models/tiny.yaml --prompts %s 2>&1", bin, path);
    test_check(run(cmd, all, sizeof all) == 1 && strstr(all, "prompts.txt") && strstr(all, "line 3"),
               "--prompts: a bad id is named with its file and line (%s)", all);
}

int main(void) {
    const char *bin = getenv("CISPO_BIN");
    if (!test_check(bin != NULL, "CISPO_BIN is set (run through ctest)")) return test_finish("test_generate");
    if (!test_check(mkdtemp(tmp_dir) != NULL, "temporary directory")) return test_finish("test_generate");
    char tpath[128], bpath[128];
    snprintf(tpath, sizeof tpath, "%s/text.txt", tmp_dir);
    snprintf(bpath, sizeof bpath, "%s/bad.txt", tmp_dir);
    DIR *d = opendir("tests/fixtures/parity");
    int n_fix = 0;
    if (test_check(d != NULL, "tests/fixtures/parity (run from the repo root)")) {
        struct dirent *e;
        while ((e = readdir(d))) {
            char dir[512], g[600];
            snprintf(dir, sizeof dir, "tests/fixtures/parity/%s", e->d_name);
            snprintf(g, sizeof g, "%s/greedy.txt", dir);
            if (e->d_name[0] == '.' || access(g, R_OK)) continue;
            check_fixture(bin, dir);
            n_fix++;
        }
        closedir(d);
    }
    test_check(n_fix >= 4, "%d fixtures with greedy.txt", n_fix);

    // text prompt: the printed text is the decoding of the token path's ids
    char cmd[2048], text_out[4096], ids_out[4096];
    const char *tok = "configs/tokenizers/demo/tokenizer.json", *prompt = "Compute 3+4*2.";
    snprintf(cmd, sizeof cmd, "'%s' generate --model configs/models/tiny.yaml --tokenizer %s --prompt '%s' --max-new 12 "
             "--seed 3 --no-eos", bin, tok, prompt);
    int rc1 = run(cmd, text_out, sizeof text_out);
    tokenizer_t *tk = tokenizer_load(tok);
    if (test_check(tk != NULL, "demo tokenizer: %s", cispo_last_error())) {
        token_ids_t ids = {0};
        tokenizer_encode(tk, prompt, strlen(prompt), &ids, TOKENIZER_ADD_SPECIAL);
        FILE *f = fopen(tpath, "w");
        for (size_t i = 0; i < ids.n; i++) fprintf(f, "%d ", ids.ids[i]);
        fclose(f);
        snprintf(cmd, sizeof cmd, "'%s' generate --model configs/models/tiny.yaml --prompt-tokens %s --max-new 12 "
                 "--seed 3 --no-eos", bin, tpath);
        int rc2 = run(cmd, ids_out, sizeof ids_out);
        int32_t *gen;
        int ng;
        char *dec = NULL;
        if (rc2 == 0 && !model_parse_tokens(ids_out, "output", 512, 1, &gen, &ng)) {
            dec = tokenizer_decode(tk, gen, (size_t)ng, TOKENIZER_LOSSY, NULL);
            free(gen);
        }
        text_out[strcspn(text_out, "\n")] = 0;
        test_check(rc1 == 0 && rc2 == 0 && dec && !strcmp(dec, text_out),
                   "text prompt prints the decoded ids of the token path ('%s' vs '%s')", text_out, dec ? dec : "");
        free(dec);
        token_ids_free(&ids);
        tokenizer_free(tk);
    }
    // refusals
    char err[4096];
    snprintf(cmd, sizeof cmd, "'%s' generate --prompt-tokens x.txt 2>&1", bin);
    test_check(run(cmd, err, sizeof err) == 2 && strstr(err, "--model"), "no --model: exit 2 naming it (%s)", err);
    FILE *f = fopen(bpath, "w");
    fprintf(f, "1 2\n3 99999\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' generate --model tests/fixtures/parity/basic --prompt-tokens %s 2>&1", bin, bpath);
    test_check(run(cmd, err, sizeof err) == 1 && strstr(err, "bad.txt") && strstr(err, "line 2"),
               "an id outside the vocabulary: exit 1 naming file and line (%s)", err);
    check_eos_stop(bin);
    check_prompts_file(bin);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd)) {}
    return test_finish("test_generate");
}
