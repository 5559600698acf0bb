// tests/test_base.c — the bottom floor (base/): the RNG's exact numbers (checkpoints, synthetic data and
// demo results depend on them), the growable buffer, UTF-8 rules, the YAML reader's trees and its
// file:line errors, the check macros' fatal line (statement, file:line, host, rank), each failure
// provoked in a forked child, and the host memory the trainer plans with.
//     build/test_base
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"
#include "base/rng.h"
#include "base/utf8.h"
#include "base/yaml.h"
#include "testutil.h"

// ---- the check macros name their library's types, success values and error-string functions; here
// stand-ins play the libraries (this file includes none of their headers, as base/ itself does not).
typedef int cudaError_t;
typedef int cublasStatus_t;
typedef int ncclResult_t;
enum { cudaSuccess = 0, CUBLAS_STATUS_SUCCESS = 0, ncclSuccess = 0, MPI_SUCCESS = 0, MPI_MAX_ERROR_STRING = 64 };
static const char *cudaGetErrorString(cudaError_t e) { return e == 2 ? "out of memory" : "unknown"; }
static const char *cublasGetStatusString(cublasStatus_t e) { return e == 13 ? "CUBLAS_STATUS_EXECUTION_FAILED" : "?"; }
static const char *ncclGetErrorString(ncclResult_t e) { return e == 3 ? "internal error" : "?"; }
static int MPI_Error_string(int code, char *s, int *len) {
    *len = snprintf(s, MPI_MAX_ERROR_STRING, "MPI_ERR_TRUNCATE: message truncated (code %d)", code);
    return MPI_SUCCESS;
}
static int fake_library_call(int code) { return code; }

// Runs fn in a child with stderr captured; returns what it wrote, *sig = the signal that ended it.
static void run_child(void (*fn)(void), const char *rank_env, char *out, size_t cap, int *sig) {
    int fd[2];
    out[0] = 0;
    *sig = 0;
    if (pipe(fd)) return;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        if (rank_env) setenv("OMPI_COMM_WORLD_RANK", rank_env, 1);
        else unsetenv("OMPI_COMM_WORLD_RANK");
        signal(SIGABRT, SIG_DFL);
        fn();
        _exit(0);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(fd[0], out + n, cap - 1 - n)) > 0) n += (size_t)k;
    out[n] = 0;
    close(fd[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

// Each LINE_* is the line of the failing check in the function below it.
enum { LINE_MPI = __LINE__ + 2 };
static void die_mpi(void) {
    MPI_CHECK(fake_library_call(15));
}
enum { LINE_CUDA = __LINE__ + 2 };
static void die_cuda(void) {
    CUDA_CHECK(fake_library_call(2));
}
enum { LINE_CUBLAS = __LINE__ + 2 };
static void die_cublas(void) {
    CUBLAS_CHECK(fake_library_call(13));
}
enum { LINE_NCCL = __LINE__ + 2 };
static void die_nccl(void) {
    NCCL_CHECK(fake_library_call(3));
}
enum { LINE_ASSERT = __LINE__ + 3 };
static void die_assert(void) {
    int tokens = 3;
    CISPO_ASSERT(tokens % 2 == 0);
}
enum { LINE_RANK = __LINE__ + 3 };
static void die_set_rank(void) {
    cispo_set_rank(6);
    CISPO_ASSERT(1 + 1 == 3);
}
static void pass_checks(void) {
    MPI_CHECK(fake_library_call(0));
    CUDA_CHECK(fake_library_call(0));
    CUBLAS_CHECK(fake_library_call(0));
    NCCL_CHECK(fake_library_call(0));
    CISPO_ASSERT(2 > 1);
}

static void expect_fatal(void (*fn)(void), const char *rank_env, int line, const char *stmt,
                         const char *what, const char *rank) {
    char out[2048], where[64], host[256] = "";
    int sig;
    run_child(fn, rank_env, out, sizeof out, &sig);
    gethostname(host, sizeof host - 1);
    snprintf(where, sizeof where, "test_base.c:%d:", line);
    test_check(sig == SIGABRT, "%s: the child aborts (signal %d)", stmt, sig);
    test_check(strstr(out, "cispo: fatal:") && strstr(out, where) && strstr(out, stmt) && strstr(out, what) &&
                   strstr(out, host) && strstr(out, rank),
               "%s: the message names the statement, %s, '%s', host %s and %s: %s", stmt, where, what, host, rank, out);
}

static void test_checks_fatal(void) {
    expect_fatal(die_mpi, "3", LINE_MPI, "fake_library_call(15)", "MPI error 15 (MPI_ERR_TRUNCATE", "rank 3]");
    expect_fatal(die_cuda, "1", LINE_CUDA, "fake_library_call(2)", "CUDA error 2 (out of memory)", "rank 1]");
    expect_fatal(die_cublas, NULL, LINE_CUBLAS, "fake_library_call(13)", "cuBLAS error 13 (CUBLAS_STATUS_EXECUTION_FAILED)",
                 "rank 0]");
    expect_fatal(die_nccl, "12", LINE_NCCL, "fake_library_call(3)", "NCCL error 3 (internal error)", "rank 12]");
    expect_fatal(die_assert, "2", LINE_ASSERT, "tokens % 2 == 0", "internal invariant", "rank 2]");
    // the setter wins over the launcher's environment
    expect_fatal(die_set_rank, "4", LINE_RANK, "1 + 1 == 3", "internal invariant", "rank 6]");
    char out[512];
    int sig;
    run_child(pass_checks, NULL, out, sizeof out, &sig);
    test_check(sig == 0 && out[0] == 0, "successful calls pass silently: signal %d, '%s'", sig, out);
}

// ---- RNG: the values of the splitmix64 reference (Steele et al.; seed 0) and of the copies this
// module replaced, recorded before the change.
static void test_rng(void) {
    const uint64_t ref0[3] = {0xE220A8397B1DCDAFull, 0x6E789E6AA1B965F4ull, 0x06C45D188009454Full};
    const uint64_t ref12345[3] = {0x22118258A9D111A0ull, 0x346EDCE5F713F8EDull, 0x1E9A57BC80E6721Dull};
    uint64_t s = 0, t = 12345;
    for (int i = 0; i < 3; i++) {
        uint64_t a = rng_next(&s), b = rng_next(&t);
        test_check(a == ref0[i] && b == ref12345[i], "splitmix64 draw %d: %016llx %016llx", i, (unsigned long long)a,
                   (unsigned long long)b);
    }
    uint64_t u = 42;
    test_check(rng_uniform(&u) == 0.74156487877182331, "uniform(seed 42)");
    test_check(rng_next(&(uint64_t){7}) == rng_mix64(7 + 0x9E3779B97F4A7C15ull), "rng_next is rng_mix64 of the advanced state");
    // param_init_hf's normal draws (model/params.c), seed 99, std 0.02
    const float normal[5] = {0.032110244f, 0.00647269143f, 0.00962068234f, 0.00720635522f, 0.00362185738f};
    float x[5];
    uint64_t n = 99;
    rng_fill_normal(x, 5, 0.02, &n);
    for (int i = 0; i < 5; i++) test_check(x[i] == normal[i], "normal draw %d: %.9g vs %.9g", i, x[i], normal[i]);
    // datasets/ ids and the held-out split (FNV-1a, then the avalanche)
    test_check(rng_mix64(rng_fnv1a_str("arith-1")) == 0x5902762E34A307C4ull, "id hash of 'arith-1'");
    test_check(rng_fnv1a_str("model.embed_tokens.weight") == 0x4246E4732BBABEECull, "FNV-1a of a tensor name");
    uint64_t r = 5;
    int hist[7] = {0};
    for (int i = 0; i < 7000; i++) hist[rng_below(&r, 7)]++;
    int lo = 7000, hi = 0;
    for (int i = 0; i < 7; i++) lo = hist[i] < lo ? hist[i] : lo, hi = hist[i] > hi ? hist[i] : hi;
    test_check(lo > 850 && hi < 1150, "rng_below(7) covers its range evenly: %d..%d of 1000", lo, hi);
}

static void test_buf(void) {
    buf_t b = {0};
    size_t len = 99;
    char *e = buf_take(&b, &len);
    test_check(e && e[0] == 0 && len == 0, "an untouched buffer takes as \"\"");
    free(e);
    buf_init(&b);
    test_check(b.s && !strcmp(b.s, "") && b.n == 0, "buf_init gives \"\"");
    buf_puts(&b, "step");
    buf_putc(&b, ' ');
    buf_printf(&b, "%d loss %.2f", 12, 0.5);
    buf_append(&b, "\0x", 2);
    test_check(b.n == 19 && !memcmp(b.s, "step 12 loss 0.50\0x", 20), "appends: '%s' (%zu)", b.s, b.n);
    buf_clear(&b);
    test_check(b.n == 0 && b.s[0] == 0, "clear");
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 100; i++) buf_printf(&b, "%s|%d", big, i);  // grows past the printf scratch
    test_check(b.n == 100 * 1000 + 190 && b.s[b.n] == 0 && !strncmp(b.s + b.n - 3, "|99", 3), "growth: %zu bytes", b.n);
    buf_reserve(&b, 1 << 20);
    test_check(b.cap >= b.n + (1 << 20) + 1, "reserve");
    char *s = buf_take(&b, &len);
    test_check(len == 100 * 1000 + 190 && b.s == NULL && b.n == 0, "take hands over the bytes and empties the buffer");
    free(s);
    buf_free(&b);
}

static void test_utf8(void) {
    uint32_t cp = 0;
    test_check(utf8_decode("A", 1, &cp) == 1 && cp == 'A', "ASCII");
    test_check(utf8_decode("\xC3\xA9", 2, &cp) == 2 && cp == 0xE9, "é");
    test_check(utf8_decode("\xE6\x95\xB0", 3, &cp) == 3 && cp == 0x6570, "数");
    test_check(utf8_decode("\xF0\x9F\x98\x80", 4, &cp) == 4 && cp == 0x1F600, "emoji");
    test_check(utf8_decode("\xC0\xAF", 2, &cp) == 0, "overlong '/' is malformed");
    test_check(utf8_decode("\xED\xA0\x80", 3, &cp) == 0, "a surrogate is malformed");
    test_check(utf8_decode("\xF4\x90\x80\x80", 4, &cp) == 0, "above U+10FFFF is malformed");
    test_check(utf8_decode("\xE6\x95", 2, &cp) == 0, "a truncated character is malformed");
    const uint32_t cps[] = {0x24, 0xA2, 0x20AC, 0x10348, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        char out[4];
        int k = utf8_encode(cps[i], out);
        uint32_t back = 0;
        test_check(k == (int)i + (i == 4 ? 0 : 1) && utf8_decode(out, (size_t)k, &back) == k && back == cps[i],
                   "U+%04X round-trips in %d bytes", cps[i], k);
    }
    size_t bad = 0;
    test_check(utf8_valid("ab\xC3\xA9", 4, NULL), "valid text");
    test_check(!utf8_valid("ab\xC3(", 4, &bad) && bad == 2, "the first bad byte is named: %zu", bad);
    test_check(utf8_is_cont(0x95) && !utf8_is_cont('a') && !utf8_is_cont(0xE6), "continuation bytes");
    // from_utf8_lossy: one U+FFFD per maximal invalid prefix ("\xF0\x9F\x98" is one prefix; "\xFF" one)
    buf_t b = {0};
    utf8_append_lossy(&b, "a\xF0\x9F\x98z\xFF\xC3\xA9", 8);
    test_check(b.n == 10 && !memcmp(b.s, "a\xEF\xBF\xBDz\xEF\xBF\xBD\xC3\xA9", 10), "lossy repair: %zu bytes", b.n);
    buf_free(&b);
}

static ynode_t *yaml_text(const char *text) {
    ynode_t *y = NULL;
    cispo_clear_error();
    if (yaml_load_string(text, strlen(text), "cfg.yaml", &y)) return NULL;
    return y;
}

static void test_yaml(void) {
    ynode_t *y = yaml_text("# a run\nsteps: 7\nname: \"3\"\noptim:\n  lr: 2.5e-4\n  betas: [0.9, 0.95]\nempty:\n");
    if (test_check(y && y->kind == YNODE_MAP && y->n == 4, "a mapping of 4 keys: %s", cispo_last_error())) {
        const ynode_t *steps = ynode_get(y, "steps"), *name = ynode_get(y, "name"), *optim = ynode_get(y, "optim");
        test_check(steps && steps->kind == YNODE_SCALAR && !strcmp(steps->str, "7") && steps->plain && steps->line == 2,
                   "steps: 7 on line 2");
        test_check(name && !strcmp(name->str, "3") && !name->plain, "a quoted scalar is not plain");
        const ynode_t *lr = ynode_get(optim, "lr"), *betas = ynode_get(optim, "betas");
        test_check(lr && !strcmp(lr->str, "2.5e-4") && lr->line == 5, "nested key on line 5");
        test_check(betas && betas->kind == YNODE_LIST && betas->n == 2 && !strcmp(betas->kids[1]->str, "0.95"), "a flow list");
        const ynode_t *empty = ynode_get(y, "empty");
        test_check(empty && empty->kind == YNODE_SCALAR && !strcmp(empty->str, "") && empty->plain, "an empty value");
        test_check(!ynode_get(y, "missing") && !ynode_get(steps, "x"), "absent keys");
    }
    ynode_free(y);
    y = NULL;
    test_check(yaml_load_string("", 0, "empty.yaml", &y) == 0 && y == NULL, "an empty file is an empty document");
    struct {
        const char *text, *want;
    } bad[] = {
        {"steps: [1, 2\nlr: 3\n", "cfg.yaml:2: malformed YAML at line 2"},
        {"steps: 1\nlr: 2\nsteps: 3\n", "cfg.yaml:3: key 'steps' appears twice"},
        {"a: &x 1\nb: *x\n", "cfg.yaml:1: YAML anchors"},
        {"a: 1\nb: *x\n", "cfg.yaml:2:"},
        {"? [1, 2]\n: 3\n", "cfg.yaml:1: mapping keys must be plain names"},
        {"a: !!str 1\n", "cfg.yaml:1: YAML tags are not supported"},
        {"a: 1\n---\nb: 2\n", "cfg.yaml:2: a second YAML document"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ynode_t *r = yaml_text(bad[i].text);
        test_check(!r && !strncmp(cispo_last_error(), bad[i].want, strlen(bad[i].want)),
                   "bad YAML %zu: '%s' should start with '%s'", i, cispo_last_error(), bad[i].want);
        ynode_free(r);
    }
    char deep[400] = "";
    for (int i = 0; i < 100; i++) strcat(deep, "[");
    ynode_t *r = yaml_text(deep);
    test_check(!r && strstr(cispo_last_error(), "nested more than"), "nesting is bounded: %s", cispo_last_error());
    ynode_free(r);
    test_check(yaml_load_file("/nonexistent/run.yaml", &r) == -1 && strstr(cispo_last_error(), "/nonexistent/run.yaml"),
               "a missing file is named: %s", cispo_last_error());
}

// the host's memory as the trainer's memory plan reads it: known on Linux, available within total, total within
// the physical memory (lower under a container's limit)
static void test_host_memory(void) {
    size_t avail = 0, total = 0;
    const int rc = cispo_host_memory(&avail, &total);
    const size_t phys = (size_t)sysconf(_SC_PHYS_PAGES) * (size_t)sysconf(_SC_PAGESIZE);
    test_check(rc == 0 && avail > 0 && avail <= total && total <= phys,
               "host memory: rc %d, %zu of %zu bytes available (physical %zu)", rc, avail, total, phys);
}

int main(void) {
    test_rng();
    test_host_memory();
    test_buf();
    test_utf8();
    test_yaml();
    test_checks_fatal();
    return test_finish("test_base");
}
