// tests/test_tblog.c — TensorBoard events written by trainer/tblog.c, read back with the
// `tensorboard` package's event reader ($CISPO_PYTHON from the test venv).
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/testutil.h"
#include "trainer/tblog.h"

int main(void) {
    test_check(tblog_crc32c("123456789", 9) == 0xE3069283u, "crc32c check value");
    char dir[] = "/tmp/cispo_tblog_XXXXXX";
    test_check(mkdtemp(dir) != NULL, "temp dir");
    tblog_t tb;
    test_check(tblog_open(&tb, dir) == 0, "open");
    for (int s = 0; s < 5; s++) {
        tblog_scalar(&tb, "reward/mean", s, 0.25 * s);
        tblog_scalar(&tb, "loss", s, -1.5 + s);
    }
    tblog_close(&tb);
    const char *py = getenv("CISPO_PYTHON");
    const char *src = getenv("CISPO_SRC");
    if (!test_check(py && src, "CISPO_PYTHON and CISPO_SRC set (run through scripts/test.sh)")) return test_finish("test_tblog");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s/tests/tblog_read.py %s", py, src, tb.path);
    FILE *p = popen(cmd, "r");
    char line[256];
    int n = 0, version = 0, ok = 1;
    while (p && fgets(line, sizeof line, p)) {
        char tag[64];
        long step;
        double v;
        if (!strncmp(line, "version brain.Event:2", 21)) {
            version = 1;
            continue;
        }
        if (sscanf(line, "%63s %ld %lf", tag, &step, &v) != 3) continue;
        double want = !strcmp(tag, "loss") ? -1.5 + step : 0.25 * step;
        if (v != want) ok = 0;
        n++;
    }
    int rc = p ? pclose(p) : -1;
    test_check(rc == 0, "reader exit status %d", rc);
    test_check(version, "file version record");
    test_check(n == 10 && ok, "10 scalars read back with their values (%d)", n);
    unlink(tb.path);
    rmdir(dir);
    return test_finish("test_tblog");
}
