// tests/test_sandbox_cli.c — `cispo sandbox run|probe|serve` as a user meets them: the JSON result
// of a run (stdin, tests, call-based tests, compile errors), usage errors, and a host without the
// isolation the sandbox needs (simulated with CISPO_SANDBOX_PRETEND_MISSING): a refusal naming what
// is missing and the flag that accepts the risk, and with that flag, a run with reduced isolation.
// Needs CISPO_BIN (ctest sets it).
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tests/testutil.h"

static const char *bin;
static char dir[64];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return strdup("");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    n = (long)fread(s, 1, (size_t)n, f);
    s[n] = 0;
    fclose(f);
    return s;
}

static void put(const char *name, const char *text) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

// Runs cispo with args (NULL-terminated) and `pretend` in CISPO_SANDBOX_PRETEND_MISSING (or
// unset); returns the exit status, *out/*err the captured streams (caller frees).
static int run(const char *pretend, char **out, char **err, const char *const *args) {
    char po[128], pe[128];
    snprintf(po, sizeof po, "%s/out.txt", dir);
    snprintf(pe, sizeof pe, "%s/err.txt", dir);
    pid_t pid = fork();
    if (pid == 0) {
        int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644), fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fo, 1);
        dup2(fe, 2);
        if (chdir(dir)) _exit(126);
        if (pretend) setenv("CISPO_SANDBOX_PRETEND_MISSING", pretend, 1);
        else unsetenv("CISPO_SANDBOX_PRETEND_MISSING");
        const char *argv[32] = {bin, "sandbox"};
        int k = 2;
        for (int i = 0; args[i] && k < 31; i++) argv[k++] = args[i];
        argv[k] = NULL;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    *out = slurp(po);
    *err = slurp(pe);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *str(const cJSON *o, const char *path) {  // "a.b" lookups
    char buf[64];
    snprintf(buf, sizeof buf, "%s", path);
    char *dot = strchr(buf, '.');
    if (dot) *dot = 0, o = cJSON_GetObjectItem(o, buf), path = dot + 1;
    const cJSON *v = cJSON_GetObjectItem(o, dot ? path : buf);
    return cJSON_IsString(v) ? v->valuestring : "";
}

int main(void) {
    bin = getenv("CISPO_BIN");
    if (!test_check(bin != NULL, "CISPO_BIN is set (ctest sets it)")) return test_finish("test_sandbox_cli");
    char abs_bin[1024];
    if (bin[0] != '/' && getcwd(abs_bin, sizeof abs_bin)) {
        strncat(abs_bin, "/", sizeof abs_bin - strlen(abs_bin) - 1);
        strncat(abs_bin, bin, sizeof abs_bin - strlen(abs_bin) - 1);
        bin = abs_bin;
    }
    snprintf(dir, sizeof dir, "/tmp/cispo-cli-XXXXXX");
    if (!mkdtemp(dir)) return 1;
    put("sum.py", "import sys\nprint(sum(int(x) for x in sys.stdin.read().split()))\n");
    put("nums.txt", "1 2 3 4 5\n");
    put("tests.json", "[{\"stdin\": \"1 2\", \"stdout\": \"3\"}, {\"stdin\": \"10 20 30\", \"stdout\": \"60\"}]");
    put("fn.py", "def mul(a, b):\n    return a * b\n");
    put("record.json", "{\"fn_name\": \"mul\", \"tests\": [{\"input\": [6, 7], \"output\": 42}, {\"input\": \"2\\n0.5\", \"output\": 1.0}]}");
    put("bad.c", "int main( { return 0; }\n");
    char *out, *err;
    cJSON *j;

    int rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "python", "--code", "sum.py", "--stdin", "nums.txt", NULL});
    j = cJSON_Parse(out);
    test_check(rc == 0 && !strcmp(str(j, "status"), "Finished") && !strcmp(str(j, "run.stdout"), "15\n"),
               "run with --stdin: Finished, stdout 15 (rc %d, %s %s)", rc, out, err);
    cJSON_Delete(j), free(out), free(err);

    rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "python", "--code", "sum.py", "--tests", "tests.json", NULL});
    j = cJSON_Parse(out);
    test_check(rc == 0 && !strcmp(str(j, "status"), "Accepted") && cJSON_GetObjectItem(j, "passed")->valueint == 2 &&
                   cJSON_GetArraySize(cJSON_GetObjectItem(j, "tests")) == 2,
               "run with --tests: Accepted, 2 verdicts (rc %d, %.300s)", rc, out);
    cJSON_Delete(j), free(out), free(err);

    rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "python", "--code", "fn.py", "--tests", "record.json", NULL});
    j = cJSON_Parse(out);
    test_check(rc == 0 && !strcmp(str(j, "status"), "Accepted"), "run with a call-based record: Accepted (rc %d, %.300s)", rc, out);
    cJSON_Delete(j), free(out), free(err);

    rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "c", "--code", "bad.c", NULL});
    j = cJSON_Parse(out);
    test_check(rc == 0 && !strcmp(str(j, "status"), "CompileError") && strstr(str(j, "compile.stderr"), "error"),
               "a C compile error: CompileError with the compiler's message (rc %d, %.300s)", rc, out);
    cJSON_Delete(j), free(out), free(err);

    rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "cobol", "--code", "sum.py", NULL});
    test_check(rc == 2 && strstr(err, "unknown language 'cobol'"), "an unknown language: exit 2 and a message (rc %d, %s)", rc, err);
    free(out), free(err);
    rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "python", NULL});
    test_check(rc == 2 && strstr(err, "--code"), "no --code: exit 2 naming it (rc %d, %s)", rc, err);
    free(out), free(err);
    rc = run(NULL, &out, &err, (const char *const[]){"run", "--lang", "python", "--code", "missing.py", NULL});
    test_check(rc == 1 && strstr(err, "missing.py"), "an unreadable --code file: exit 1 naming it (rc %d, %s)", rc, err);
    free(out), free(err);

    rc = run(NULL, &out, &err, (const char *const[]){"probe", NULL});
    j = cJSON_Parse(out);
    test_check(j && cJSON_GetObjectItem(j, "user_namespaces") && cJSON_GetObjectItem(j, "seccomp") && cJSON_GetObjectItem(j, "cgroup") &&
                   (rc == 0) == !str(j, "missing")[0],
               "probe: a JSON report, exit 0 exactly when nothing is missing (rc %d, %s)", rc, out);
    cJSON_Delete(j), free(out), free(err);

    // a host without isolation: refusal, unless the risk is accepted
    const char *missing[] = {"userns", "seccomp", "cgroup"};
    const char *named[] = {"user namespaces", "seccomp", "cgroup"};
    for (int i = 0; i < 3; i++) {
        rc = run(missing[i], &out, &err, (const char *const[]){"run", "--lang", "python", "--code", "sum.py", "--stdin", "nums.txt", NULL});
        j = cJSON_Parse(out);
        test_check(rc == 1 && !strcmp(str(j, "status"), "SandboxError") && strstr(err, named[i]) && strstr(err, "--allow-unconfined") &&
                       strstr(err, "refusing"),
                   "without %s: refuses, names it and the flag (rc %d, %s)", named[i], rc, err);
        cJSON_Delete(j), free(out), free(err);
        rc = run(missing[i], &out, &err,
                 (const char *const[]){"run", "--lang", "python", "--code", "sum.py", "--stdin", "nums.txt", "--allow-unconfined", NULL});
        j = cJSON_Parse(out);
        test_check(rc == 0 && !strcmp(str(j, "run.stdout"), "15\n") && strstr(err, "reduced isolation") && strstr(err, named[i]),
                   "without %s, --allow-unconfined: runs and says what is missing (rc %d, %s %s)", named[i], rc, out, err);
        cJSON_Delete(j), free(out), free(err);
    }
    rc = run("userns", &out, &err, (const char *const[]){"serve", "--port", "1", NULL});
    test_check(rc == 1 && strstr(err, "user namespaces"), "serve refuses too (rc %d, %s)", rc, err);
    free(out), free(err);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
    return test_finish("test_sandbox_cli");
}
