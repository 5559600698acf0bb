// tests/test_sandbox_langs.c — each language beyond Python/C/C++ (nodejs, go, rust, java, bash) as
// an ordinary program meets it: judged stdin/stdout tests (Accepted and WrongAnswer), its exit
// code, a compile error (a syntax error for the interpreted ones), a runtime error, recursion
// 200000 calls deep, threads, and
// memory well under the limit (the runtimes that reserve address space must still start and
// allocate). Time, memory past the limit (heap, threads, children), fork bombs, the network and
// the read-only filesystem are attacks: tests/test_sandbox_attacks.c runs them in every language.
// A missing toolchain fails when CISPO_REQUIRE_LANGS=1 (scripts/test.sh sets it, and CI installs
// them all); elsewhere that language is skipped with a note.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sandbox/jail.h"
#include "sandbox/runner.h"
#include "tests/testutil.h"

typedef struct {
    const char *lang;
    const char *sum;       // reads two integers, prints their sum
    const char *exit3;     // prints "bye", exits with status 3
    const char *bad_syntax;
    const char *crash;     // an uncaught error / panic
    const char *threads;   // four threads (bash: background processes) each add 1..1e6, prints the
                           // total (2000002000000)
    const char *mem100;    // allocates and touches 100 MiB, prints "ok"
    const char *syntax_status;  // CompileError (compiled) or RuntimeError (interpreted)
    const char *deep;      // recursion 200000 calls deep, prints 200000 (NULL: not a bash idiom)
} lang_case_t;

static const lang_case_t cases[] = {
    {"nodejs",
     "const v = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/).map(BigInt);\nconsole.log((v[0] + v[1]).toString());\n",
     "console.log('bye');\nprocess.exit(3);\n",
     "console.log('unclosed';\n",
     "const o = null;\nconsole.log(o.field);\n",
     "const { Worker, isMainThread, parentPort } = require('worker_threads');\n"
     "if (isMainThread) { let total = 0, left = 4;\n"
     "  for (let i = 0; i < 4; i++) new Worker(__filename).on('message', (s) => { total += s; if (--left === 0) console.log(total); });\n"
     "} else { let s = 0; for (let i = 1; i <= 1000000; i++) s += i; parentPort.postMessage(s); }\n",
     "const b = Buffer.alloc(100 << 20, 1);\nlet s = 0; for (let i = 0; i < b.length; i += 4096) s += b[i];\nconsole.log(s === 25600 ? 'ok' : 'bad');\n",
     "RuntimeError",
     "function f(n) { return n === 0 ? 0 : 1 + f(n - 1); }\nconsole.log(f(200000));\n"},
    {"go",
     "package main\nimport \"fmt\"\nfunc main() { var a, b int64; fmt.Scan(&a, &b); fmt.Println(a + b) }\n",
     "package main\nimport (\"fmt\"; \"os\")\nfunc main() { fmt.Println(\"bye\"); os.Exit(3) }\n",
     "package main\nfunc main() { x := }\n",
     "package main\nimport \"fmt\"\nfunc main() { var a []int; i := 5; fmt.Println(a[i]) }\n",
     "package main\nimport (\"fmt\"; \"sync\")\nfunc main() { var wg sync.WaitGroup; var mu sync.Mutex; var t int64\n"
     "  for k := 0; k < 4; k++ { wg.Add(1); go func() { var s int64; for i := int64(1); i <= 1000000; i++ { s += i }; mu.Lock(); t += s; mu.Unlock(); wg.Done() }() }\n"
     "  wg.Wait(); fmt.Println(t) }\n",
     "package main\nimport \"fmt\"\nfunc main() { b := make([]byte, 100<<20); for i := range b { b[i] = 1 }; s := 0; for i := 0; i < len(b); i += 4096 { s += int(b[i]) }\n"
     "  if s == 25600 { fmt.Println(\"ok\") } else { fmt.Println(\"bad\") } }\n",
     "CompileError",
     "package main\nimport \"fmt\"\nfunc f(n int) int { if n == 0 { return 0 }; return 1 + f(n-1) }\nfunc main() { fmt.Println(f(200000)) }\n"},
    {"rust",
     "use std::io::Read;\nfn main() { let mut s = String::new(); std::io::stdin().read_to_string(&mut s).unwrap();\n"
     "  let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect(); println!(\"{}\", v[0] + v[1]); }\n",
     "fn main() { println!(\"bye\"); std::process::exit(3); }\n",
     "fn main() { let x: i32 = \"text\"; }\n",
     "fn main() { let v: Vec<i32> = Vec::new(); let i = std::env::args().count() + 4; println!(\"{}\", v[i]); }\n",
     "fn main() { let hs: Vec<_> = (0..4).map(|_| std::thread::spawn(|| (1..=1000000i64).sum::<i64>())).collect();\n"
     "  let t: i64 = hs.into_iter().map(|h| h.join().unwrap()).sum(); println!(\"{}\", t); }\n",
     "fn main() { let b = vec![1u8; 100 << 20]; let s: usize = b.iter().step_by(4096).map(|&x| x as usize).sum();\n"
     "  println!(\"{}\", if s == 25600 { \"ok\" } else { \"bad\" }); }\n",
     "CompileError",
     "fn f(n: u64) -> u64 { if n == 0 { 0 } else { 1 + f(n - 1) } }\nfn main() { let n = 200000 + std::env::args().count() as u64 - 1; println!(\"{}\", f(n)); }\n"},
    {"java",
     "import java.util.*;\npublic class Main { public static void main(String[] a) { Scanner s = new Scanner(System.in);\n"
     "  System.out.println(s.nextLong() + s.nextLong()); } }\n",
     "public class Main { public static void main(String[] a) { System.out.println(\"bye\"); System.exit(3); } }\n",
     "public class Main { public static void main(String[] a) { int x = ; } }\n",
     "public class Main { public static void main(String[] a) { String s = null; System.out.println(s.length()); } }\n",
     "import java.util.concurrent.atomic.*;\npublic class Main { public static void main(String[] a) throws Exception {\n"
     "  AtomicLong t = new AtomicLong(); Thread[] th = new Thread[4];\n"
     "  for (int k = 0; k < 4; k++) { th[k] = new Thread(() -> { long s = 0; for (long i = 1; i <= 1000000; i++) s += i; t.addAndGet(s); }); th[k].start(); }\n"
     "  for (Thread x : th) x.join(); System.out.println(t.get()); } }\n",
     "public class Main { public static void main(String[] a) { byte[] b = new byte[100 << 20]; java.util.Arrays.fill(b, (byte) 1);\n"
     "  int s = 0; for (int i = 0; i < b.length; i += 4096) s += b[i]; System.out.println(s == 25600 ? \"ok\" : \"bad\"); } }\n",
     "CompileError",
     "public class Main { static int f(int n) { return n == 0 ? 0 : 1 + f(n - 1); }\n  public static void main(String[] a) { System.out.println(f(200000)); } }\n"},
    {"bash",
     "read a b\necho $((a + b))\n",
     "echo bye\nexit 3\n",
     "if then fi (\n",
     "set -e\nfalse_command_that_does_not_exist\necho unreachable\n",
     "t=0\nfor k in 1 2 3 4; do ( echo $((1000000 * 1000001 / 2)) ) > /work/part$k & done\n"
     "wait\nfor k in 1 2 3 4; do t=$((t + $(cat /work/part$k))); done\necho $t\n",
     "s=$(head -c 100000000 /dev/zero | tr '\\0' x)\n[ ${#s} -eq 100000000 ] && echo ok || echo bad\n",
     "RuntimeError",
     NULL},
};

static cJSON *run_req(const char *lang, const char *code, const char *stdin_text, const char *tests_json, double mem_mb) {
    cJSON *q = cJSON_CreateObject();
    cJSON_AddStringToObject(q, "language", lang);
    cJSON_AddStringToObject(q, "code", code);
    if (stdin_text) cJSON_AddStringToObject(q, "stdin", stdin_text);
    if (tests_json) cJSON_AddItemToObject(q, "tests", cJSON_Parse(tests_json));
    cJSON_AddNumberToObject(q, "memory_limit_MB", mem_mb);
    cJSON_AddNumberToObject(q, "run_timeout", 10);
    cJSON_AddNumberToObject(q, "compile_timeout", 30);
    cJSON *r = sandbox_execute(q);
    cJSON_Delete(q);
    return r;
}

static const char *str_of(const cJSON *o, const char *k) {
    const cJSON *s = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(s) ? s->valuestring : "";
}

// Checks the status (and, when want_out is given, the stdout's first line); prints the result
// when a check fails.
static void expect(const char *lang, const char *what, cJSON *r, const char *want_status, const char *want_out) {
    const char *status = str_of(r, "status");
    const char *out = str_of(cJSON_GetObjectItem(r, "run"), "stdout");
    int ok = test_check(!strcmp(status, want_status), "%s %s: status %s (want %s)", lang, what, status, want_status);
    if (want_out) ok &= test_check(!strncmp(out, want_out, strlen(want_out)), "%s %s: prints '%s'", lang, what, want_out);
    if (!ok) {
        char *t = cJSON_PrintUnformatted(r);
        printf("  result: %.1500s\n", t);
        free(t);
    }
}

static void test_lang(const lang_case_t *c) {
    cJSON *r = run_req(c->lang, c->sum, NULL,
                       "[{\"stdin\":\"3 4\\n\",\"stdout\":\"7\\n\"},{\"stdin\":\"1000000000000 -4\",\"stdout\":\"999999999996\"}]", 256);
    expect(c->lang, "sum tests", r, "Accepted", NULL);
    cJSON_Delete(r);
    r = run_req(c->lang, c->sum, NULL, "[{\"stdin\":\"3 4\\n\",\"stdout\":\"8\\n\"}]", 256);
    expect(c->lang, "wrong answer", r, "WrongAnswer", NULL);
    cJSON_Delete(r);
    r = run_req(c->lang, c->sum, "20 22\n", NULL, 256);
    expect(c->lang, "stdin run", r, "Finished", "42");
    cJSON_Delete(r);

    r = run_req(c->lang, c->exit3, NULL, NULL, 256);
    expect(c->lang, "exit 3", r, "RuntimeError", "bye");
    const cJSON *code = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "run"), "exit_code");
    test_check(cJSON_IsNumber(code) && code->valueint == 3, "%s exit 3: exit_code %d", c->lang, cJSON_IsNumber(code) ? code->valueint : -99);
    cJSON_Delete(r);

    r = run_req(c->lang, c->bad_syntax, NULL, NULL, 256);
    expect(c->lang, "syntax error", r, c->syntax_status, NULL);
    const char *err = !strcmp(c->syntax_status, "CompileError") ? str_of(cJSON_GetObjectItem(r, "compile"), "stderr")
                                                               : str_of(cJSON_GetObjectItem(r, "run"), "stderr");
    test_check(strlen(err) > 10, "%s syntax error: the diagnostic is shown (%.80s)", c->lang, err);
    cJSON_Delete(r);

    r = run_req(c->lang, c->crash, NULL, NULL, 256);
    expect(c->lang, "runtime error", r, "RuntimeError", NULL);
    cJSON_Delete(r);

    if (c->deep) {
        r = run_req(c->lang, c->deep, NULL, NULL, 256);
        expect(c->lang, "deep recursion", r, "Finished", "200000");
        cJSON_Delete(r);
    }

    r = run_req(c->lang, c->threads, NULL, NULL, 256);
    expect(c->lang, "threads", r, "Finished", "2000002000000");
    cJSON_Delete(r);

    // 100 MiB under a 256 MiB limit: the limit must not break the runtime (Go, the JVM and V8
    // reserve far more address space than that)
    r = run_req(c->lang, c->mem100, NULL, NULL, 256);
    expect(c->lang, "100 MiB under 256", r, "Finished", "ok");
    cJSON_Delete(r);
    printf("%-8s ok\n", c->lang);
}

int main(void) {
    char why[1200];
    if (jail_check_ready(why, sizeof why) != 0) {
        test_check(0, "the sandbox cannot run on this host: %s", why);
        return test_finish("test_sandbox_langs");
    }
    const char *req_env = getenv("CISPO_REQUIRE_LANGS");
    int require = req_env && !strcmp(req_env, "1");
    // the language names: SandboxFusion's, and the usual aliases
    const char *names[] = {"nodejs", "javascript", "js", "go", "golang", "rust", "java", "bash", "sh", "python", "cpp", "c"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) test_check(sandbox_lang_known(names[i]), "language '%s' is known", names[i]);
    test_check(!sandbox_lang_known("node js") && !sandbox_lang_known("") && !sandbox_lang_known("ruby"), "unknown languages are refused");
    cJSON *r = run_req("ruby", "puts 1", NULL, NULL, 256);
    test_check(strstr(str_of(r, "message"), "nodejs, go, rust, java, bash") != NULL, "an unknown language's error lists the languages (%s)",
               str_of(r, "message"));
    cJSON_Delete(r);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (!sandbox_lang_available(cases[i].lang, why, sizeof why)) {
            if (require) test_check(0, "%s: %s (CISPO_REQUIRE_LANGS=1)", cases[i].lang, why);
            else printf("%-8s SKIPPED: %s (CISPO_REQUIRE_LANGS=1 makes this a failure)\n", cases[i].lang, why);
            continue;
        }
        test_lang(&cases[i]);
    }
    return test_finish("test_sandbox_langs");
}
