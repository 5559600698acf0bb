// trainer/cmd_sandbox.c — `cispo sandbox`: run one program in the sandbox, serve the
// SandboxFusion-compatible HTTP API, or report what isolation this host allows.
// defines: cmd_sandbox
//   cispo sandbox run --lang LANG --code FILE [--stdin FILE] [--tests FILE.json]
//                     [--fn-name NAME] [--timeout S] [--memory MB] [--stop-on-failure] [--allow-unconfined]
//   cispo sandbox serve --port P [--workers N] [--bind ADDR] [--client-timeout S] [--max-body BYTES]
//                       [--body-timeout S] [--max-connections N] [--max-connections-per-ip N] [--http-threads N]
//                       [--cpus N]
//                       [--allow-unconfined]
//   cispo sandbox probe
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/common.h"

#include "sandbox/jail.h"
#include "sandbox/runner.h"
#include "sandbox/server.h"
#include "trainer/commands.h"
#include "trainer/keyconf.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: cispo sandbox run --lang LANG --code FILE [options]    (cispo sandbox run --help)\n"
            "       cispo sandbox serve --port P [options]                         (cispo sandbox serve --help)\n"
            "       cispo sandbox probe\n"
            "\n"
            "run    prints one JSON result: status, exit code, signal, time, memory, stdout/stderr, and with\n"
            "       --tests (a JSON array of {stdin, stdout}, or {input, output} with --fn-name) a verdict per test.\n"
            "serve  SandboxFusion-compatible HTTP: POST /run_code, GET /v1/ping.\n"
            "probe  what isolation this host allows (user namespaces, seccomp, cgroups); exit 1 when something is missing.\n"
            "--allow-unconfined accepts running without the isolation the host lacks (never the default).\n");
}

typedef struct {
    char lang[16], code[4096], stdin_file[4096], tests[4096], fn_name[256], python[4096];
    double timeout, memory;
    int stop_on_failure, allow_unconfined;
} run_opts_t;

#define O(f) offsetof(run_opts_t, f)
#define S(f) sizeof(((run_opts_t *)0)->f)
static const keyconf_key_t run_keys[] = {
    {"lang", KEY_STRING, O(lang), 0, 0, NULL, "", "the language: python, c, cpp, nodejs, go, rust, java or bash (required)", S(lang)},
    {"code", KEY_STRING, O(code), 0, 0, NULL, "", "the program's source file (required)", S(code)},
    {"stdin", KEY_STRING, O(stdin_file), 0, 0, NULL, "", "a file fed to the program's standard input", S(stdin_file)},
    {"tests", KEY_STRING, O(tests), 0, 0, NULL, "", "a JSON array of tests ({stdin, stdout}, or {input, output} with --fn-name) or a record holding one", S(tests)},
    {"fn-name", KEY_STRING, O(fn_name), 0, 0, NULL, "", "call-based tests: the function to call", S(fn_name)},
    {"timeout", KEY_DOUBLE, O(timeout), 0, 86400, NULL, "0", "seconds per run (0: the sandbox default)", 0},
    {"memory", KEY_DOUBLE, O(memory), 0, 1e7, NULL, "0", "memory limit in MB (0: the sandbox default)", 0},
    {"stop-on-failure", KEY_BOOL, O(stop_on_failure), 0, 0, NULL, "false", "stop at the first failed test", 0},
    {"python", KEY_STRING, O(python), 0, 0, NULL, "", "the Python interpreter (empty: the sandbox's choice)", S(python)},
    {"allow-unconfined", KEY_BOOL, O(allow_unconfined), 0, 0, NULL, "false", "run without the isolation the host lacks", 0},
};
#undef O
#undef S

static const keyconf_cli_t run_cli = {
    "cispo sandbox run",
    "cispo sandbox run --lang LANG --code FILE [options]",
    "  Runs one program in the sandbox and prints one JSON result (status, exit code, signal, time, memory,\n"
    "  stdout/stderr, and a verdict per test with --tests).",
    run_keys, sizeof run_keys / sizeof run_keys[0], 0};

typedef struct {
    int port, workers, client_timeout, allow_unconfined, max_connections, max_per_ip, http_threads;
    char bind[256], python[4096];
    double max_body, body_timeout, cpus;
} serve_opts_t;

#define O(f) offsetof(serve_opts_t, f)
static const keyconf_key_t serve_keys[] = {
    {"port", KEY_INT, O(port), 1, 65535, NULL, "8080", "TCP port to listen on", 0},
    {"workers", KEY_INT, O(workers), 1, 4096, NULL, "2", "sandboxed runs at once", 0},
    {"bind", KEY_STRING, O(bind), 0, 0, NULL, "127.0.0.1", "address to listen on", 256},
    {"client-timeout", KEY_INT, O(client_timeout), 0, 86400, NULL, "0", "seconds a connection may stay idle (0: 30)", 0},
    {"max-body", KEY_DOUBLE, O(max_body), 0, 1e12, NULL, "0", "largest request body in bytes (0: 16 MiB)", 0},
    {"body-timeout", KEY_DOUBLE, O(body_timeout), 1, 86400, NULL, "60", "seconds a request's body may take to arrive", 0},
    {"max-connections", KEY_INT, O(max_connections), 1, 1000000, NULL, "1024", "open connections in all", 0},
    {"max-connections-per-ip", KEY_INT, O(max_per_ip), 1, 1000000, NULL, "256", "open connections from one client address", 0},
    {"cpus", KEY_DOUBLE, O(cpus), 0, 4096, NULL, "1", "CPU quota of each run, all its processes together (0: none)", 0},
    {"http-threads", KEY_INT, O(http_threads), 1, 256, NULL, "2", "threads polling the connections (idle ones hold none)", 0},
    {"python", KEY_STRING, O(python), 0, 0, NULL, "", "the Python interpreter (empty: the sandbox's choice)", 4096},
    {"allow-unconfined", KEY_BOOL, O(allow_unconfined), 0, 0, NULL, "false", "serve without the isolation the host lacks", 0},
};
#undef O

static const keyconf_cli_t serve_cli = {
    "cispo sandbox serve",
    "cispo sandbox serve --port P [options]",
    "  SandboxFusion-compatible HTTP service: POST /run_code, GET /v1/ping. Serves until SIGINT or SIGTERM.",
    serve_keys, sizeof serve_keys / sizeof serve_keys[0], 0};

static const keyconf_cli_t probe_cli = {
    "cispo sandbox probe", "cispo sandbox probe",
    "  Prints what isolation this host allows (user namespaces, seccomp, cgroups) as JSON; exit 1 when\n"
    "  something is missing.",
    NULL, 0, 0};

static void allow_unconfined(void) {
    jail_options_t o = *jail_get_options();
    o.allow_unconfined = 1;
    jail_set_options(&o);
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
    run_opts_t o;
    keyconf_defaults(&o, run_keys, run_cli.n_keys);
    int prc = keyconf_parse_cli(&run_cli, &o, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo sandbox run: %s\n", cispo_last_error());
        return prc < 0 ? 2 : 0;
    }
    const char *lang = o.lang[0] ? o.lang : NULL, *code_path = o.code[0] ? o.code : NULL;
    const char *stdin_path = o.stdin_file[0] ? o.stdin_file : NULL, *tests_path = o.tests[0] ? o.tests : NULL;
    const char *fn_name = o.fn_name[0] ? o.fn_name : NULL;
    double timeout = o.timeout, memory = o.memory;
    int stop = o.stop_on_failure;
    if (o.allow_unconfined) allow_unconfined();
    if (o.python[0]) sandbox_set_python(o.python);
    if (!lang || !code_path) {
        fprintf(stderr, "cispo sandbox run: --lang and --code are required (`cispo sandbox run --help`)\n");
        return 2;
    }
    if (!sandbox_lang_known(lang)) {
        fprintf(stderr, "cispo sandbox run: unknown language '%s': use one of %s\n", lang, sandbox_lang_list());
        return 2;
    }
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "language", lang);
    char *code = cispo_read_file(code_path, NULL);
    if (!code) {
        fprintf(stderr, "cispo sandbox run: cannot read --code %s\n", code_path);
        cJSON_Delete(req);
        return 1;
    }
    cJSON_AddStringToObject(req, "code", code);
    free(code);
    if (stdin_path) {
        char *in = cispo_read_file(stdin_path, NULL);
        if (!in) {
            fprintf(stderr, "cispo sandbox run: cannot read --stdin %s\n", stdin_path);
            cJSON_Delete(req);
            return 1;
        }
        cJSON_AddStringToObject(req, "stdin", in);
        free(in);
    }
    if (tests_path) {
        char *t = cispo_read_file(tests_path, NULL);
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
    serve_opts_t so;
    keyconf_defaults(&so, serve_keys, serve_cli.n_keys);
    int prc = keyconf_parse_cli(&serve_cli, &so, argc, argv, NULL, NULL, NULL);
    if (prc) {
        if (prc < 0) fprintf(stderr, "cispo sandbox serve: %s\n", cispo_last_error());
        return prc < 0 ? 2 : 0;
    }
    if (so.allow_unconfined) allow_unconfined();
    if (so.python[0]) sandbox_set_python(so.python);
    jail_options_t jo = *jail_get_options();
    jo.cpus = so.cpus > 0 ? so.cpus : -1;
    jail_set_options(&jo);
    sandbox_server_opts_t o = {.port = so.port, .workers = so.workers, .bind = so.bind, .client_timeout = so.client_timeout,
                               .max_body = (size_t)so.max_body, .max_connections = so.max_connections,
                               .max_per_ip = so.max_per_ip, .body_timeout = so.body_timeout, .http_threads = so.http_threads};
    return sandbox_serve(&o);
}

int cmd_sandbox(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "run")) return cmd_run(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve")) return cmd_serve(argc - 1, argv + 1);
    if (!strcmp(argv[1], "probe")) {
        int prc = keyconf_parse_cli(&probe_cli, NULL, argc - 1, argv + 1, NULL, NULL, NULL);
        if (prc < 0) fprintf(stderr, "cispo sandbox probe: %s\n", cispo_last_error());
        return prc < 0 ? 2 : prc ? 0 : cmd_probe();
    }
    fprintf(stderr, "cispo sandbox: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
