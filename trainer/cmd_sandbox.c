// trainer/cmd_sandbox.c — `cispo sandbox`: run one program in the sandbox, serve the
// SandboxFusion-compatible HTTP API, or report what isolation this host allows.
// defines: cmd_sandbox
//   cispo sandbox run --lang python|c|cpp --code FILE [--stdin FILE] [--tests FILE.json]
//                     [--fn-name NAME] [--timeout S] [--memory MB] [--stop-on-failure] [--allow-unconfined]
//   cispo sandbox serve --port P [--workers N] [--bind ADDR] [--client-timeout S] [--max-body BYTES]
//                       [--allow-unconfined]
//   cispo sandbox probe
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sandbox/jail.h"
#include "sandbox/runner.h"
#include "sandbox/server.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cispo sandbox run --lang python|c|cpp --code FILE [--stdin FILE] [--tests FILE.json]\n"
            "                         [--fn-name NAME] [--timeout S] [--memory MB] [--stop-on-failure]\n"
            "                         [--python PATH] [--allow-unconfined]\n"
            "       cispo sandbox serve --port P [--workers N] [--bind ADDR] [--client-timeout S] [--max-body BYTES]\n"
            "                           [--python PATH] [--allow-unconfined]\n"
            "       cispo sandbox probe\n"
            "\n"
            "run    prints one JSON result: status, exit code, signal, time, memory, stdout/stderr, and with\n"
            "       --tests (a JSON array of {stdin, stdout}, or {input, output} with --fn-name) a verdict per test.\n"
            "serve  SandboxFusion-compatible HTTP: POST /run_code, GET /v1/ping.\n"
            "probe  what isolation this host allows (user namespaces, seccomp, cgroups); exit 1 when something is missing.\n"
            "--allow-unconfined accepts running without the isolation the host lacks (never the default).\n");
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while (buf && (k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += k;
        if (n + 1 >= cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf) buf[n] = 0;
    return buf;
}

static int cmd_probe(void) {
    const jail_host_t *h = jail_probe();
    printf("{\"root\": %s, \"user_namespaces\": %s, \"seccomp\": %s, \"cgroup\": \"%s\", \"missing\": ",
           h->is_root ? "true" : "false", h->userns ? "true" : "false", h->seccomp ? "true" : "false",
           h->cgroup_v2 ? "v2" : h->cgroup_v1 ? "v1" : "none");
    cJSON *m = cJSON_CreateString(h->missing);
    char *s = cJSON_PrintUnformatted(m);
    printf("%s}\n", s);
    free(s);
    cJSON_Delete(m);
    return h->missing[0] ? 1 : 0;
}

static int cmd_run(int argc, char **argv) {
    const char *lang = NULL, *code_path = NULL, *stdin_path = NULL, *tests_path = NULL, *fn_name = NULL;
    double timeout = 0, memory = 0;
    int stop = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
        if (!strcmp(a, "--stop-on-failure")) stop = 1;
        else if (!strcmp(a, "--allow-unconfined")) {
            jail_options_t o = *jail_get_options();
            o.allow_unconfined = 1;
            jail_set_options(&o);
        } else if (!v) {
            fprintf(stderr, "cispo sandbox run: %s needs a value (or is unknown)\n", a);
            return 2;
        } else if (!strcmp(a, "--lang")) lang = v, i++;
        else if (!strcmp(a, "--code")) code_path = v, i++;
        else if (!strcmp(a, "--stdin")) stdin_path = v, i++;
        else if (!strcmp(a, "--tests")) tests_path = v, i++;
        else if (!strcmp(a, "--fn-name")) fn_name = v, i++;
        else if (!strcmp(a, "--timeout")) timeout = atof(v), i++;
        else if (!strcmp(a, "--memory")) memory = atof(v), i++;
        else if (!strcmp(a, "--python")) sandbox_set_python(v), i++;
        else {
            fprintf(stderr, "cispo sandbox run: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!lang || !code_path) {
        fprintf(stderr, "cispo sandbox run: --lang and --code are required\n");
        usage(stderr);
        return 2;
    }
    if (!sandbox_lang_known(lang)) {
        fprintf(stderr, "cispo sandbox run: unknown language '%s': use python, c or cpp\n", lang);
        return 2;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "language", lang);
    char *code = slurp(code_path);
    if (!code) {
        fprintf(stderr, "cispo sandbox run: cannot read --code %s\n", code_path);
        cJSON_Delete(req);
        return 1;
    }
    cJSON_AddStringToObject(req, "code", code);
    free(code);
    if (stdin_path) {
        char *in = slurp(stdin_path);
        if (!in) {
            fprintf(stderr, "cispo sandbox run: cannot read --stdin %s\n", stdin_path);
            cJSON_Delete(req);
            return 1;
        }
        cJSON_AddStringToObject(req, "stdin", in);
        free(in);
    }
    if (tests_path) {
        char *t = slurp(tests_path);
        cJSON *tests = t ? cJSON_Parse(t) : NULL;
        free(t);
        if (!tests) {
            fprintf(stderr, "cispo sandbox run: --tests %s: %s\n", tests_path, t ? "not valid JSON" : "cannot read the file");
            cJSON_Delete(req);
            return 1;
        }
        if (cJSON_IsObject(tests)) {  // a record: {"tests": [...], "fn_name": ...}
            cJSON *fn = cJSON_GetObjectItemCaseSensitive(tests, "fn_name");
            if (!fn_name && cJSON_IsString(fn)) cJSON_AddStringToObject(req, "fn_name", fn->valuestring);
            cJSON *arr = cJSON_DetachItemFromObjectCaseSensitive(tests, "tests");
            cJSON_Delete(tests);
            tests = arr;
        }
        if (!cJSON_IsArray(tests)) {
            fprintf(stderr, "cispo sandbox run: --tests %s: expected a JSON array of tests (or an object with \"tests\")\n", tests_path);
            cJSON_Delete(tests);
            cJSON_Delete(req);
            return 1;
        }
        cJSON_AddItemToObject(req, "tests", tests);
    }
    if (fn_name) cJSON_AddStringToObject(req, "fn_name", fn_name);
    if (timeout > 0) cJSON_AddNumberToObject(req, "run_timeout", timeout);
    if (memory > 0) cJSON_AddNumberToObject(req, "memory_limit_MB", memory);
    if (stop) cJSON_AddTrueToObject(req, "stop_on_failure");
    char why[1200];
    if (jail_check_ready(why, sizeof why) == 0 && why[0]) fprintf(stderr, "cispo sandbox: %s\n", why);
    cJSON *res = sandbox_execute(req);
    char *text = cJSON_Print(res);
    printf("%s\n", text);
    free(text);
    cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
    int rc = cJSON_IsString(st) && !strcmp(st->valuestring, "SandboxError") ? 1 : 0;
    if (rc) fprintf(stderr, "cispo sandbox run: %s\n", cJSON_GetObjectItemCaseSensitive(res, "message")->valuestring);
    cJSON_Delete(res);
    cJSON_Delete(req);
    return rc;
}

static int cmd_serve(int argc, char **argv) {
    sandbox_server_opts_t o = {.port = 8080, .workers = 2, .bind = "127.0.0.1"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), 0;
        if (!strcmp(a, "--allow-unconfined")) {
            jail_options_t jo = *jail_get_options();
            jo.allow_unconfined = 1;
            jail_set_options(&jo);
        } else if (!v) {
            fprintf(stderr, "cispo sandbox serve: %s needs a value (or is unknown)\n", a);
            return 2;
        } else if (!strcmp(a, "--port")) o.port = atoi(v), i++;
        else if (!strcmp(a, "--workers")) o.workers = atoi(v), i++;
        else if (!strcmp(a, "--bind")) o.bind = v, i++;
        else if (!strcmp(a, "--client-timeout")) o.client_timeout = atoi(v), i++;
        else if (!strcmp(a, "--max-body")) o.max_body = (size_t)atof(v), i++;
        else if (!strcmp(a, "--python")) sandbox_set_python(v), i++;
        else {
            fprintf(stderr, "cispo sandbox serve: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.port <= 0 || o.port > 65535) {
        fprintf(stderr, "cispo sandbox serve: --port must be in 1..65535\n");
        return 2;
    }
    return sandbox_serve(&o);
}

int cmd_sandbox(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "probe")) return cmd_probe();
    fprintf(stderr, "cispo sandbox: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
