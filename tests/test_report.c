// tests/test_report.c — the run report: metrics.jsonl (with a metric present only on some steps and
// a torn last line) -> report.html with one SVG plot per metric, the four main ones first.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/report.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

int main(void) {
    char dir[] = "/tmp/cispo_report_XXXXXX";
    test_check(mkdtemp(dir) != NULL, "temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int s = 1; s <= 10; s++) {
        fprintf(f, "{\"step\": %d, \"time\": %d, \"reward_mean\": %g, \"accuracy\": %g, \"response_len_mean\": %d, "
                   "\"clip_frac\": %g, \"grad_norm\": %g",
                s, 1000 + s, 0.1 * s, 0.05 * s, 20 + s, 0.01, 1.0 / s);
        if (s % 5 == 0) fprintf(f, ", \"heldout_accuracy\": %g", 0.1 * s);
        fprintf(f, "}\n");
    }
    fprintf(f, "{\"step\": 11, \"reward_me");  // torn line of an interrupted run
    fclose(f);
    test_check(report_write(dir, "demo <run>") == 0, "report: %s", cispo_last_error());
    char out[256];
    snprintf(out, sizeof out, "%s/report.html", dir);
    char *html = cispo_read_file(out, NULL);
    if (!test_check(html != NULL, "report.html exists")) return test_finish("test_report");
    test_check(count(html, "<svg") == 6, "six plots (%d)", count(html, "<svg"));
    test_check(strstr(html, "demo &lt;run&gt;") != NULL, "title escaped");
    const char *r = strstr(html, ">reward_mean"), *a = strstr(html, ">accuracy"), *l = strstr(html, ">response_len_mean"),
               *c = strstr(html, ">clip_frac"), *g = strstr(html, ">grad_norm");
    test_check(r && a && l && c && g && r < a && a < l && l < c && c < g, "main plots first, in order");
    test_check(!strstr(html, ">time"), "clock fields are not plotted");
    const char *h = strstr(html, ">heldout_accuracy");
    test_check(h && strstr(h, "(last 1)"), "sparse metric plotted with its last value");
    test_check(strstr(html, "10 steps logged") != NULL, "row count");
    free(html);
    unlink(out);
    unlink(path);
    rmdir(dir);
    return test_finish("test_report");
}
