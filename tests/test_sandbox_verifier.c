// tests/test_sandbox_verifier.c — the "code" reward verifier: extraction of the last fenced code
// block, verdicts through the local sandbox pool and through a remote SandboxFusion-compatible
// service (`cispo sandbox serve`, started here), and failures reported as failures: an unreachable
// service, a wrong URL, records without tests.
// Run from the repo root with CISPO_BIN (ctest sets it).
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "base/common.h"
#include "rl/code_verifier.h"
#include "rl/verifier.h"
#include "tests/testutil.h"

static void extraction(void) {
    char lang[16];
    char *c = code_extract_block("text\n```python\nprint(1)\n```\nmore\n```cpp\nint main(){}\n```\nend", lang, sizeof lang);
    test_check(c && !strcmp(c, "int main(){}\n") && !strcmp(lang, "cpp"), "extract: the last block wins (%s, %s)", c ? c : "NULL", lang);
    free(c);
    c = code_extract_block("```py\na=1\n```\n```text\nsample output\n```", lang, sizeof lang);
    test_check(c && !strcmp(c, "a=1\n") && !strcmp(lang, "python"), "extract: blocks in other languages are skipped (%s)", c ? c : "NULL");
    free(c);
    c = code_extract_block("<think>```c\nint x;\n```</think>answer:\n```\nprint(2)\n```", lang, sizeof lang);
    test_check(c && !strcmp(c, "print(2)\n") && !strcmp(lang, "python"), "extract: after </think>, untagged = python (%s)", c ? c : "NULL");
    free(c);
    c = code_extract_block("no code here, just ``` one fence", lang, sizeof lang);
    test_check(c == NULL, "extract: no complete block -> NULL");
    free(c);
    c = code_extract_block("``` python3 title=x\nprint(5)\n```\n", lang, sizeof lang);
    test_check(c && !strcmp(c, "print(5)\n") && !strcmp(lang, "python"), "extract: spaces and words after the tag (%s)", c ? c : "NULL");
    free(c);
    c = code_extract_block("```C++\nint main(){return 0;}\n```", lang, sizeof lang);
    test_check(c && !strcmp(lang, "cpp"), "extract: tags are case-insensitive (%s)", lang);
    free(c);
    // the other languages of the sandbox, under the names it takes (SandboxFusion's)
    const char *tags[][2] = {{"javascript", "nodejs"}, {"js", "nodejs"}, {"go", "go"}, {"Rust", "rust"}, {"java", "java"},
                             {"bash", "bash"}, {"sh", "bash"}};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        char text[64];
        snprintf(text, sizeof text, "```%s\nx\n```\n", tags[i][0]);
        c = code_extract_block(text, lang, sizeof lang);
        test_check(c && !strcmp(lang, tags[i][1]), "extract: ```%s is %s (%s)", tags[i][0], tags[i][1], c ? lang : "no block");
        free(c);
    }
}

static const char *add_tests = "[{\"stdin\":\"1 2\\n\",\"stdout\":\"3\\n\"},{\"stdin\":\"-5 5\",\"stdout\":\"0\"},"
                               "{\"stdin\":\"0.5 0.25\",\"stdout\":\"0.75\"}]";
static const char *call_tests = "[{\"input\":[[1,2,3]],\"output\":6},{\"input\":\"[4, 5]\",\"output\":\"9\"}]";

static void verdicts(const code_verifier_config_t *cfg, const char *where) {
    struct {
        const char *response, *tests, *fn;
        int correct, failed;
        const char *what;
    } cases[] = {
        {"Here:\n```python\na,b=map(float,input().split())\nr=a+b\nprint(int(r) if r==int(r) else r)\n```\n", add_tests, NULL, 1, 0, "correct python"},
        {"```python\nprint(3)\n```", add_tests, NULL, 0, 0, "hard-coded first answer"},
        {"```python\nimport sys\nsys.exit(0)\n```", add_tests, NULL, 0, 0, "exit(0) before printing"},
        {"```cpp\n#include <cstdio>\nint main(){double a,b;scanf(\"%lf %lf\",&a,&b);printf(\"%g\\n\",a+b);}\n```", add_tests, NULL, 1, 0, "correct C++"},
        {"```c\nint main( {\n```", add_tests, NULL, 0, 0, "C that does not compile"},
        {"```python\ndef total(xs):\n    return sum(xs)\n```", call_tests, "total", 1, 0, "correct call-based"},
        {"```python\nclass Solution:\n    def total(self, xs):\n        return sum(xs)\n```", call_tests, "total", 1, 0, "call-based Solution method"},
        {"```python\nclass A:\n    def __eq__(s, o): return True\ndef total(xs):\n    return A()\n```", call_tests, "total", 0, 0, "equal-to-everything result"},
        {"```python\nwhile True: pass\n```", add_tests, NULL, 0, 0, "time limit"},
        {"I think the answer is 3.", add_tests, NULL, 0, 0, "no code block: wrong, not failed"},
        {"```python\nprint(1)\n```", NULL, NULL, 0, 1, "record without tests: failed"},
        {"```python\nprint(1)\n```", "{\"not\": \"a list\"}", NULL, 0, 1, "malformed tests: failed"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        verify_request_t req = {.response = cases[i].response, .tests_json = cases[i].tests, .fn_name = cases[i].fn};
        verdict_t v;
        int rc = code_verify_with(cfg, &req, &v);
        int ok = v.correct == cases[i].correct && v.failed == cases[i].failed && (rc == 0) == !cases[i].failed &&
                 v.reward == (cases[i].correct ? 1.0 : 0.0);
        test_check(ok, "%s: %s -> correct %d failed %d (%s)", where, cases[i].what, v.correct, v.failed, v.reason);
    }
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t l = sizeof a;
    bind(s, (struct sockaddr *)&a, sizeof a);
    getsockname(s, (struct sockaddr *)&a, &l);
    close(s);
    return ntohs(a.sin_port);
}

int main(void) {
    extraction();

    code_verifier_config_t local;
    unsetenv("CISPO_CODE_SANDBOX_URL");
    test_check(code_verifier_config_from_env(&local) == 0 && !local.remote, "config: the local pool by default");
    local.run_timeout = 2;
    verdicts(&local, "local");

    const verifier_t *v = verifier_find("code");
    test_check(v != NULL, "the registry has a \"code\" verifier");
    if (v) {
        verify_request_t req = {.response = "```python\nprint(int(input().split()[0]) + 2)\n```", .tests_json = "[{\"stdin\":\"1 2\",\"stdout\":\"3\"}]"};
        verdict_t out;
        test_check(v->verify(&req, &out) == 0 && out.correct, "registry entry: correct (%s)", out.reason);
    }

    // a remote service: our own server on a free port
    const char *bin = getenv("CISPO_BIN") ? getenv("CISPO_BIN") : "build/cispo";
    int port = free_port();
    char port_s[16], url[64];
    snprintf(port_s, sizeof port_s, "%d", port);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    pid_t server = fork();
    if (server == 0) {
        execl(bin, bin, "sandbox", "serve", "--port", port_s, "--workers", "2", (char *)NULL);
        _exit(127);
    }
    setenv("CISPO_CODE_SANDBOX_URL", url, 1);
    setenv("CISPO_CODE_SANDBOX_RETRIES", "2", 1);
    code_verifier_config_t remote;
    test_check(code_verifier_config_from_env(&remote) == 0 && remote.remote, "config: CISPO_CODE_SANDBOX_URL selects the remote service");
    remote.run_timeout = 2;
    remote.client.http.backoff_s = 0.3;  // the server needs a moment to listen; the retries cover it
    remote.client.http.max_attempts = 8;
    verdicts(&remote, "remote");

    // failures are failures: a closed port, a wrong path
    code_verifier_config_t down = remote;
    char dead[64];
    snprintf(dead, sizeof dead, "http://127.0.0.1:%d", free_port());
    down.client.url = dead;
    down.client.http.max_attempts = 2;
    down.client.http.backoff_s = 0.05;
    down.client.http.timeout_s = 2;
    verify_request_t req = {.response = "```python\nprint(3)\n```", .tests_json = "[{\"stdin\":\"1 2\",\"stdout\":\"3\"}]"};
    verdict_t out;
    int rc = code_verify_with(&down, &req, &out);
    test_check(rc == -1 && out.failed && !out.correct && strstr(out.reason, dead), "unreachable service -> failed verdict (%s)", out.reason);
    char wrong[96];
    snprintf(wrong, sizeof wrong, "%s/nope", url);
    down.client.url = wrong;
    rc = code_verify_with(&down, &req, &out);
    test_check(rc == -1 && out.failed && strstr(out.reason, "404"), "wrong URL (HTTP 404) -> failed verdict (%s)", out.reason);

    kill(server, SIGTERM);
    int st;
    waitpid(server, &st, 0);
    test_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the service stopped cleanly");
    return test_finish("test_sandbox_verifier");
}
