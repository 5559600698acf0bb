// tests/test_parity.c — parity with Hugging Face transformers' MiniMaxForCausalLM (fp32).
// For every tests/fixtures/parity/<name>/ holding config.json, model.safetensors, tokens.txt and
// expected.safetensors (written by tests/parity/make_fixtures.py): loads the model directory, scores
// the tokens and compares
//   - per-token log-probs ("logprobs" [n-1]):         max |ours - ref| <= 1e-4
//   - the mean cross-entropy ("loss" [1]):            |ours - ref| <= 1e-4
//   - the gradient of that loss for every parameter ("grad.<name>", checkpoint names):
//                                                     ||ours - ref|| / ||ref|| <= 1e-3 per tensor
//     (||ref|| floored at 1e-5 of the whole gradient's norm, for tensors whose gradient is exactly 0)
// and prints the worst of each per fixture. An empty or missing fixture folder fails.
// Then `cispo score` ($CISPO_BIN) on the first fixture, from the directory and from an HDF5 checkpoint
// made by `cispo convert`, against the same log-probs, and its one-line errors for bad token files;
// and `cispo score` on every other fixture directory.
//     ./test_parity [FIXTURE_ROOT]      (default $CISPO_SRC/tests/fixtures/parity)
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/common.h"
#include "model/hf.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "model/seq_logprob.h"
#include "tests/testutil.h"

#define LOGP_TOL 1e-4
#define GRAD_TOL 1e-3

static int is_file(const char *dir, const char *name) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

// Reads tensor `name` of f into a new buffer, checking its element count.
static float *read_expected(const st_file_t *f, const char *name, size_t numel) {
    int i = st_find(f, name);
    if (i < 0) return NULL;
    if (f->header.tensors[i].numel != numel) return NULL;
    float *x = cispo_malloc((numel ? numel : 1) * sizeof(float));
    if (st_read_f32(f, i, x) < 0) {
        free(x);
        return NULL;
    }
    return x;
}

static void run_fixture(const char *dir, const char *name) {
    model_config_t cfg;
    param_table_t table;
    float *params = NULL;
    char path[8192];
    if (!test_check(hf_load_dir(dir, &cfg, &table, &params) == 0, "%s: hf_load_dir: %s", name, cispo_last_error()))
        return;
    int32_t *ids = NULL;
    int n = 0;
    snprintf(path, sizeof path, "%s/tokens.txt", dir);
    if (!test_check(model_read_token_file(path, cfg.vocab_size, 2, &ids, &n) == 0, "%s: %s", name,
                    cispo_last_error())) {
        free(params);
        param_table_free(&table);
        return;
    }
    st_file_t ex;
    snprintf(path, sizeof path, "%s/expected.safetensors", dir);
    if (!test_check(st_open(&ex, path) == 0, "%s: %s", name, cispo_last_error())) {
        free(ids);
        free(params);
        param_table_free(&table);
        return;
    }

    model_t *m = model_create(&cfg, params, n);
    float *logp = cispo_malloc((size_t)n * sizeof(float));
    test_check(model_seq_logprobs(m, ids, n, logp) == 0, "%s: score: %s", name, cispo_last_error());
    float *ref_logp = read_expected(&ex, "logprobs", (size_t)(n - 1));
    float *ref_loss = read_expected(&ex, "loss", 1);
    double logp_err = INFINITY, loss_err = INFINITY;
    if (test_check(ref_logp && ref_loss, "%s: expected.safetensors lacks logprobs [%d] or loss [1]", name, n - 1)) {
        logp_err = test_max_abs_diff(logp, ref_logp, (size_t)(n - 1));
        double loss = 0;
        for (int i = 0; i + 1 < n; i++) loss -= logp[i];
        loss /= (n - 1);
        loss_err = fabs(loss - ref_loss[0]);
        TEST_LE(logp_err, LOGP_TOL, "%s: log-probs max |diff| %.3g > %.1g", name, logp_err, LOGP_TOL);
        TEST_LE(loss_err, LOGP_TOL, "%s: loss %.8f vs %.8f", name, loss, ref_loss[0]);
    }

    // gradient of the mean cross-entropy over the n-1 predicted tokens
    float *dlogp = cispo_malloc((size_t)n * sizeof(float));
    for (int i = 0; i < n; i++) dlogp[i] = i + 1 < n ? -1.0f / (float)(n - 1) : 0.0f;
    model_zero_grad(m);
    model_backward(m, dlogp, 0.0f);
    // A tensor whose true gradient is zero (the router with K = 1: w = p/p = 1) gets only rounding noise
    // from torch (~1e-9); such tensors are measured against 1e-5 of the whole gradient's norm instead
    // of their own.
    float **refs = cispo_calloc((size_t)m->table.n_entries, sizeof(float *));
    double total = 0;
    int missing = 0;
    for (int i = 0; i < m->table.n_entries; i++) {
        const param_entry_t *e = &m->table.entries[i];
        char gname[PARAM_NAME_MAX + 8];
        snprintf(gname, sizeof gname, "grad.%s", e->name);
        refs[i] = read_expected(&ex, gname, e->numel);
        if (!refs[i]) {
            missing++;
            test_check(0, "%s: expected.safetensors has no %s with %zu elements", name, gname, e->numel);
            continue;
        }
        for (size_t j = 0; j < e->numel; j++) total += (double)refs[i][j] * refs[i][j];
    }
    const double floor_norm = 1e-5 * sqrt(total);
    double worst = 0;
    const char *worst_name = "-";
    for (int i = 0; i < m->table.n_entries; i++) {
        const param_entry_t *e = &m->table.entries[i];
        if (!refs[i]) continue;
        const float *g = (const float *)m->grads + e->offset;
        double num = 0, den = 0;
        for (size_t j = 0; j < e->numel; j++) {
            double d = (double)g[j] - refs[i][j];
            num += d * d;
            den += (double)refs[i][j] * refs[i][j];
        }
        double err = sqrt(num) / fmax(sqrt(den), floor_norm);
        if (err != err) err = INFINITY;
        TEST_LE(err, GRAD_TOL, "%s: gradient of %s: relative error %.3g > %.1g", name, e->name, err, GRAD_TOL);
        if (!(err <= worst)) {
            worst = err;
            worst_name = e->name;
        }
        free(refs[i]);
    }
    free(refs);
    printf("%-18s T=%-3d N=%d  logp max|diff| %.2e  loss |diff| %.2e  grad worst rel %.2e (%s)%s\n", name, n,
           cfg.n_layers, logp_err, loss_err, worst, worst_name, missing ? "  [missing tensors]" : "");

    free(dlogp);
    free(ref_logp);
    free(ref_loss);
    free(logp);
    model_free(m);
    st_close(&ex);
    free(ids);
    free(params);
    param_table_free(&table);
}


// Runs cmd, returns its exit status; stdout into *out (malloc'ed), stderr appended to it after "\n--\n".
static int run_capture(const char *cmd, char **out) {
    char full[16384];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *f = popen(full, "r");
    if (!f) return -1;
    size_t cap = 4096, n = 0;
    char *buf = cispo_malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (cap - n < 2) buf = cispo_realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    *out = buf;
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// `cispo score` prints n-1 log-probs that match the fixture's.
static void check_score_output(const char *label, const char *cmd, const float *ref, int n_ref) {
    char *out = NULL;
    int rc = run_capture(cmd, &out);
    if (!test_check(rc == 0, "%s: exit %d: %s", label, rc, out ? out : "")) {
        free(out);
        return;
    }
    int cnt = 0;
    double worst = 0;
    char *p = out, *end;
    for (;;) {
        double v = strtod(p, &end);
        if (end == p) break;
        if (cnt < n_ref) worst = fmax(worst, fabs(v - ref[cnt]));
        cnt++;
        p = end;
    }
    test_check(cnt == n_ref, "%s: %d lines, expected %d", label, cnt, n_ref);
    TEST_LE(worst, LOGP_TOL, "%s: max |diff| %.3g", label, worst);
    printf("%s: %d log-probs, max |diff| vs transformers %.2e\n", label, cnt, worst);
    free(out);
}

// `cispo score` on a fixture directory against its recorded log-probs.
static void score_dir(const char *fixture_dir, const char *name) {
    const char *bin = getenv("CISPO_BIN");
    if (!bin) return;
    char path[8192], cmd[16384], label[300];
    st_file_t ex;
    snprintf(path, sizeof path, "%s/expected.safetensors", fixture_dir);
    if (!test_check(st_open(&ex, path) == 0, "%s", cispo_last_error())) return;
    int i = st_find(&ex, "logprobs");
    int n_ref = i >= 0 ? (int)ex.header.tensors[i].numel : 0;
    float *ref = cispo_malloc((size_t)(n_ref + 1) * sizeof(float));
    if (i >= 0) st_read_f32(&ex, i, ref);
    st_close(&ex);
    snprintf(cmd, sizeof cmd, "'%s' score --model '%s' --tokens '%s/tokens.txt'", bin, fixture_dir, fixture_dir);
    snprintf(label, sizeof label, "cispo score (%s)", name);
    check_score_output(label, cmd, ref, n_ref);
    // the same through an HDF5 checkpoint: every config field must survive the conversion
    char tmpl[] = "/tmp/cispo_score_h5_XXXXXX";
    char *dir = mkdtemp(tmpl), *out = NULL;
    if (test_check(dir != NULL, "mkdtemp")) {
        snprintf(path, sizeof path, "%s/model.h5", dir);
        snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s'", bin, fixture_dir, path);
        int rc = run_capture(cmd, &out);
        if (test_check(rc == 0, "%s: cispo convert to a checkpoint: %s", name, out ? out : "")) {
            snprintf(cmd, sizeof cmd, "'%s' score --model '%s' --tokens '%s/tokens.txt'", bin, path, fixture_dir);
            snprintf(label, sizeof label, "cispo score (%s, HDF5 checkpoint)", name);
            check_score_output(label, cmd, ref, n_ref);
        }
        free(out);
        unlink(path);
        rmdir(dir);
    }
    free(ref);
}

// `cispo score`'s one-line errors (the scoring itself is checked on every fixture by score_dir).
static void test_cli(const char *fixture_dir) {
    const char *bin = getenv("CISPO_BIN");
    if (!bin) {
        printf("CISPO_BIN not set: the `cispo score` checks are skipped (ctest sets it)\n");
        return;
    }
    char cmd[16384], *out = NULL;
    char tmpl[] = "/tmp/cispo_score_XXXXXX";
    char *dir = mkdtemp(tmpl);
    if (!test_check(dir != NULL, "mkdtemp")) return;
    int rc;

    // bad token files: exit 1, one line naming the file and the position
    struct {
        const char *text, *what;
    } bad[] = {
        {"1 2 x 4\n", "line 1, token 3: 'x' is not a token id"},
        {"1 2\n3 99999\n", "line 2, token 4: id 99999 is outside the vocabulary"},
        {"5\n", "1 token, at least 2 needed"},
        {"", "0 tokens, at least 2 needed"},
        {"3 -4\n", "token 2: '-4' is not a token id"},
        {"3 4.5\n", "token 2: '4.5' is not a token id"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char tok[4200];
        snprintf(tok, sizeof tok, "%s/bad%zu.txt", dir, k);
        FILE *f = fopen(tok, "w");
        fputs(bad[k].text, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "'%s' score --model '%s' --tokens '%s'", bin, fixture_dir, tok);
        rc = run_capture(cmd, &out);
        char *nl = strchr(out, '\n');
        int one_line = nl && nl[1] == 0;
        test_check(rc == 1 && strstr(out, tok) && strstr(out, bad[k].what) && one_line,
                   "bad token file %zu: exit %d, message \"%s\" should name the file and say \"%s\"", k, rc, out,
                   bad[k].what);
        free(out);
        unlink(tok);
    }
    snprintf(cmd, sizeof cmd, "'%s' score --model '%s/nonexistent' --tokens '%s/tokens.txt'", bin, dir, fixture_dir);
    rc = run_capture(cmd, &out);
    test_check(rc == 1 && strstr(out, "nonexistent"), "missing model is named: %s", out);
    free(out);
    rmdir(dir);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    char root[4096];
    const char *src = getenv("CISPO_SRC");
    if (argc > 1) snprintf(root, sizeof root, "%s", argv[1]);
    else snprintf(root, sizeof root, "%s/tests/fixtures/parity", src ? src : ".");
    DIR *d = opendir(root);
    if (!d) {
        test_check(0, "no parity fixtures: cannot open %s (generate them with tests/parity/make_fixtures.py)", root);
        return test_finish("test_parity");
    }
    char *names[256];
    int nn = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nn < 256) {
        if (de->d_name[0] == '.') continue;
        char dir[4096 + 256];
        snprintf(dir, sizeof dir, "%s/%s", root, de->d_name);
        if (is_file(dir, "config.json") && is_file(dir, "model.safetensors") && is_file(dir, "tokens.txt") &&
            is_file(dir, "expected.safetensors"))
            names[nn++] = cispo_strdup(de->d_name);
    }
    closedir(d);
    qsort(names, (size_t)nn, sizeof names[0], cmp_str);
    test_check(nn > 0, "no parity fixtures under %s (each needs config.json, model.safetensors, tokens.txt, "
               "expected.safetensors; generate them with tests/parity/make_fixtures.py)", root);
    for (int i = 0; i < nn; i++) {
        char dir[4096 + 256];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        run_fixture(dir, names[i]);
    }
    printf("%d fixtures\n", nn);
    if (nn > 0) {
        char dir[4096 + 256];
        snprintf(dir, sizeof dir, "%s/%s", root, names[0]);
        test_cli(dir);
    }
    for (int i = 0; i < nn; i++) {  // `cispo score` on every fixture, from its directory and a checkpoint
        char dir[4096 + 256];
        snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        score_dir(dir, names[i]);
    }
    for (int i = 0; i < nn; i++) free(names[i]);
    return test_finish("test_parity");
}
