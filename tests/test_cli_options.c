// tests/test_cli_options.c — one command-line style for every subcommand (trainer/keyconf_cli.c):
// a badly typed or out-of-range value is an error naming the option and the value, a misspelt option
// gets the nearest names, `--key value`, `--key=value` and `key=value` ('-' and '_' alike) give the
// same result, flags stay flags, and `--help` lists each command's options from its table.
//   ctest -R test_cli_options        (needs CISPO_BIN and CISPO_SRC, set by ctest; run from the repo root)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testshell.h"
#include "tests/testutil.h"

static const char *bin;
static char out[1 << 16], first[1 << 16];

static int cispo(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s </dev/null", bin, args);
    return test_run_shell(cmd, out, sizeof out);
}

// Every subcommand that takes options, with one bad value each: exit 2 and a message holding want[].
static void test_bad_values(void) {
    static const struct {
        const char *args;
        const char *want[2];
    } cases[] = {
        {"train --steps 1x", {"steps", "'1x' is not an integer"}},
        {"train configs/demo.yaml group-size=0", {"group_size", "out of range"}},
        {"demo --lr=abc", {"lr", "'abc' is not a number"}},
        {"eval --eval-size -3", {"eval_size", "-3 is out of range"}},
        {"generate --model configs/models/tiny.yaml --prompt hi --temperature 1x", {"temperature", "'1x' is not a number"}},
        {"generate --model configs/models/tiny.yaml --prompt hi --top-p 2", {"top-p", "out of range"}},
        {"generate --model configs/models/tiny.yaml --prompt hi --max-new 0", {"max-new", "0 is out of range"}},
        {"generate --greedy=maybe", {"greedy", "'maybe' is not a boolean"}},
        {"logprobs --tokens t.txt --model", {"--model", "needs a value"}},
        {"score --model", {"--model", "needs a value"}},
        {"tokenize --tokenizer t.json --decode=2", {"decode", "'2' is not a boolean"}},
        {"gen-data --task arith --n ten --seed 1", {"'n'", "'ten' is not an integer"}},
        {"gen-data --task arith --n 5 --seed 1 --split test", {"split", "train|heldout|all"}},
        {"gen-data --task arith --n 5 --seed 1 --heldout-frac 1.5", {"heldout-frac", "out of range"}},
        {"verify --gold 1 --answer 1 --quiet=often", {"quiet", "'often' is not a boolean"}},
        {"sandbox run --lang python --code x.py --timeout 1x", {"timeout", "'1x' is not a number"}},
        {"sandbox serve --port 70000", {"port", "70000 is out of range"}},
        {"sandbox serve --workers x", {"workers", "'x' is not an integer"}},
        {"cost --model tiny --gpus 1x", {"gpus", "'1x' is not an integer"}},
        {"cost --model tiny --mfu-train 0", {"mfu-train", "out of range"}},
        {"convert --force a b", {"unknown option '--force'", "cispo convert --help"}},
        {"sandbox probe --verbose", {"unknown option '--verbose'", "cispo sandbox probe --help"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cispo(cases[i].args);
        test_check(rc == 2 && strstr(out, cases[i].want[0]) && strstr(out, cases[i].want[1]) && !strstr(out, "usage:"),
                   "cispo %s: exit 2 (got %d), message names '%s' and '%s': %s", cases[i].args, rc, cases[i].want[0],
                   cases[i].want[1], out);
    }
}

// A misspelt option or key: exit 2, the nearest valid name suggested in the form it was written.
static void test_did_you_mean(void) {
    static const struct {
        const char *args, *want;
    } cases[] = {
        {"generate --max-nwe 3", "did you mean: --max-new"},
        {"generate --prompt_tokenz f.txt", "did you mean: --prompt-tokens"},
        {"train configs/demo.yaml stpes=3", "did you mean: steps"},
        {"train --grup-size 4", "did you mean: --group_size"},
        {"eval modle=x.h5", "did you mean: model"},
        {"cost --model tiny --gpsu 8", "--gpus?"},
        {"sandbox run --tiemout 3", "did you mean: --timeout"},
        {"verify --gld 1 --answer 1", "did you mean: --gold"},
        {"gen-data --sede 1", "did you mean: --seed"},
        {"tokenize --tokeniser t.json", "did you mean: --tokenizer"},
        {"logprobs --token t.txt", "did you mean: --tokens"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cispo(cases[i].args);
        test_check(rc == 2 && strstr(out, cases[i].want), "cispo %s: exit 2 (got %d) and '%s': %s", cases[i].args, rc,
                   cases[i].want, out);
    }
}

// The same settings written in each form give byte-identical output.
static void test_forms_agree(const char *dir) {
    char tok[256], args[4096];
    snprintf(tok, sizeof tok, "%s/prompt.txt", dir);
    FILE *f = fopen(tok, "w");
    fputs("1 2 3 4\n", f);
    fclose(f);
    static const char *const gen_forms[] = {
        "--max-new 6 --seed 7 --top-k 5 --temperature 0.8",
        "max-new=6 seed=7 top-k=5 temperature=0.8",
        "--max_new=6 --seed=7 top_k=5 --temperature=0.8",
    };
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "generate --model configs/models/tiny.yaml --prompt-tokens %s --logprobs %s", tok, gen_forms[i]);
        int rc = cispo(args);
        if (i == 0) snprintf(first, sizeof first, "%s", out);
        test_check(rc == 0 && strchr(out, '\n') && !strcmp(out, first), "generate, form %d (%s): rc %d, same output: %s vs %s", i,
                   gen_forms[i], rc, out, first);
    }
    // a flag: --greedy alone, greedy=true and --greedy=yes agree
    static const char *const flag_forms[] = {"--greedy", "greedy=true", "--greedy=yes"};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "generate --model configs/models/tiny.yaml --prompt-tokens=%s --max-new 6 %s", tok,
                 flag_forms[i]);
        int rc = cispo(args);
        if (i == 0) snprintf(first, sizeof first, "%s", out);
        test_check(rc == 0 && !strcmp(out, first), "greedy flag, form '%s': same output (rc %d)", flag_forms[i], rc);
    }
    static const char *const cost_forms[] = {
        "--model tiny --gpus 8 --gpu A100 --gen-len 2000",
        "model=tiny gpus=8 gpu=A100 gen_len=2000",
        "--model=tiny --gpus=8 --gpu=A100 --gen_len=2000",
    };
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "cost %s", cost_forms[i]);
        int rc = cispo(args);
        if (i == 0) snprintf(first, sizeof first, "%s", out);
        test_check(rc == 0 && strstr(out, "8 x A100") && !strcmp(out, first), "cost, form %d (%s): same output (rc %d)", i,
                   cost_forms[i], rc);
    }
    // the run-config commands take --key value as well as key=value (and - for _)
    snprintf(args, sizeof args, "eval configs/demo.yaml --eval-size 0 --model %s/none.h5", dir);
    int rc = cispo(args);
    test_check(rc == 1 && strstr(out, "none.h5"), "eval --key value: the model option reaches the loader (rc %d): %s", rc, out);
    // cispo score is another name of cispo logprobs
    snprintf(args, sizeof args, "logprobs --model tests/fixtures/parity/basic --tokens %s", tok);
    rc = cispo(args);
    snprintf(first, sizeof first, "%s", out);
    snprintf(args, sizeof args, "score --model=tests/fixtures/parity/basic tokens=%s", tok);
    int rc2 = cispo(args);
    test_check(rc == 0 && rc2 == 0 && !strcmp(out, first), "score and logprobs agree (rc %d, %d): %s vs %s", rc, rc2, out, first);
}

// --help: exit 0, every option of the table listed with its type, range and default.
static void test_help(void) {
    static const struct {
        const char *args, *want[3];
    } cases[] = {
        {"generate --help", {"--max-new N", "an integer in [1, 10000000]; default 32", "--greedy "}},
        {"logprobs --help", {"--model TEXT", "--tokens TEXT", "usage: cispo logprobs"}},
        {"score -h", {"--model TEXT", "--tokens TEXT", "usage: cispo logprobs"}},
        {"train --help", {"--group_size N", "--loss WORD", "one of cispo|"}},
        {"eval --help", {"--eval_size N", "default 200", "usage: cispo eval"}},
        {"demo --help", {"--steps N", "--lr X", "usage: cispo demo"}},
        {"tokenize --help", {"--decode ", "flag", "--tokenizer TEXT"}},
        {"gen-data --help", {"--split WORD", "one of train|heldout|all; default all", "--heldout-frac X"}},
        {"verify --help", {"--gold TEXT", "--verifier TEXT", "default \"math\""}},
        {"sandbox run --help", {"--timeout X", "--allow-unconfined ", "--lang TEXT"}},
        {"sandbox serve --help", {"--port N", "an integer in [1, 65535]; default 8080", "--workers N"}},
        {"cost --help", {"--gpus N", "--mfu-rollout X", "known GPUs"}},
        {"convert --help", {"usage: cispo convert SRC DST", "--tokenizer", "HDF5"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = cispo(cases[i].args);
        int ok = rc == 0;
        for (int w = 0; w < 3; w++) ok = ok && strstr(out, cases[i].want[w]);
        test_check(ok, "cispo %s: exit 0 (got %d), lists '%s', '%s', '%s'", cases[i].args, rc, cases[i].want[0], cases[i].want[1],
                   cases[i].want[2]);
    }
    int rc = cispo("help");
    test_check(rc == 0 && strstr(out, "logprobs") && !strstr(out, "  score "), "cispo help lists logprobs, not its alias");
}

int main(void) {
    bin = getenv("CISPO_BIN");
    if (!test_check(bin != NULL, "CISPO_BIN is set (run through ctest)")) return test_finish("test_cli_options");
    char dir[] = "/tmp/cispo-cli-opts-XXXXXX";
    if (!test_check(mkdtemp(dir) != NULL, "temporary directory")) return test_finish("test_cli_options");
    test_bad_values();
    test_did_you_mean();
    test_forms_agree(dir);
    test_help();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) {}
    return test_finish("test_cli_options");
}
