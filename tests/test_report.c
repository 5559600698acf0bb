// tests/test_report.c — the run report: a run directory with metrics.jsonl (a metric present only on some
// steps, a torn last line), sft_metrics.jsonl, runs.jsonl (a launch and a resume) and rollout samples
// -> report.html: what ran (command, overrides, commit, host, start), one SVG plot per metric with the
// main ones first, the SFT loss, a noisy curve smoothed over its faint raw line, tick labels at round
// values, and the samples of each evaluation step with their verdicts.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/common.h"
#include "tests/testutil.h"
#include "trainer/report.h"
#include "trainer/samples.h"

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++) n++;
    return n;
}

// The SVG of the plot titled name (up to its </svg>), copied into buf.
static const char *svg_of(const char *html, const char *name, char *buf, size_t cap) {
    char key[128];
    snprintf(key, sizeof key, ">%s (last", name);
    const char *t = strstr(html, key);
    if (!t) return NULL;
    const char *s = t;
    while (s > html && strncmp(s, "<svg", 4)) s--;
    const char *e = strstr(t, "</svg>");
    if (!e || (size_t)(e - s) >= cap) return NULL;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = 0;
    return buf;
}

int main(void) {
    char dir[] = "/tmp/cispo_report_XXXXXX";
    test_check(mkdtemp(dir) != NULL, "temp dir");
    char path[256];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "w");
    for (int s = 0; s <= 40; s++) {
        if (s == 0) {  // held-out accuracy before RL
            fprintf(f, "{\"step\": 0, \"heldout_accuracy\": 0.25}\n");
            continue;
        }
        fprintf(f, "{\"step\": %d, \"time\": %d, \"reward_mean\": %g, \"accuracy\": %g, \"response_len_mean\": %d, "
                   "\"clip_frac\": %g, \"grad_norm\": %g",
                s, 1000 + s, 0.01 * s + (s % 2 ? 0.2 : -0.2), 0.02 * s, 20 + s, 0.01, 1.0 / s);
        if (s % 20 == 0) fprintf(f, ", \"heldout_accuracy\": %g", 0.25 + 0.01 * s);
        fprintf(f, "}\n");
    }
    fprintf(f, "{\"step\": 41, \"reward_me");  // torn line of an interrupted run
    fclose(f);
    snprintf(path, sizeof path, "%s/sft_metrics.jsonl", dir);
    f = fopen(path, "w");
    for (int s = 1; s <= 30; s++) fprintf(f, "{\"step\": %d, \"loss\": %g, \"lr\": 0.003}\n", s, 2.0 * exp(-0.1 * s));
    fclose(f);
    snprintf(path, sizeof path, "%s/runs.jsonl", dir);
    f = fopen(path, "w");
    fprintf(f, "{\"start\":\"2026-01-02T03:04:05Z\",\"command\":\"cispo train configs/demo.yaml steps=40 loss=grpo\","
               "\"overrides\":\"steps=40 loss=grpo\",\"config\":\"/src/configs/demo.yaml\",\"cwd\":\"/home/u\","
               "\"host\":\"node<7>\",\"commit\":\"0123456789abcdef\",\"resumed_from\":\"\"}\n");
    fprintf(f, "{\"start\":\"2026-01-02T05:00:00Z\",\"command\":\"cispo train runs/x/config.yaml resume=auto\","
               "\"overrides\":\"resume=auto\",\"config\":\"\",\"cwd\":\"/home/u\",\"host\":\"node8\",\"commit\":\"\","
               "\"resumed_from\":\"runs/x/ckpt-000020.h5\"}\n");
    fclose(f);
    // rollout samples: step 20 has a correct, a wrong and a failed sample; step 40 two wrong ones
    snprintf(path, sizeof path, "%s/samples.h5", dir);
    samples_writer_t *w = samples_open(path, 0);
    test_check(w != NULL, "samples writer: %s", cispo_last_error());
    int32_t ptok[2] = {1, 2}, tok[3] = {3, 4, 5};
    float lp[3] = {-1, -1, -1};
    struct {
        int step;
        const char *completion, *extracted, *reason;
        int correct, failed;
    } rows[] = {{20, "so 7 * 3 = 21, \\boxed{21}", "21", "", 1, 0},
                {20, "the answer is <b>\\boxed{20}</b>", "20", "", 0, 0},
                {20, "\\boxed{21}", "", "remote verifier: connection refused", 0, 1},
                {40, "\\boxed{5}", "5", "", 0, 0},
                {40, "\\boxed{6}", "6", "", 0, 0}};
    for (size_t i = 0; w && i < sizeof rows / sizeof rows[0]; i++) {
        sample_record_t r = {rows[i].step, "Compute 7*3.", rows[i].completion, ptok, 2, tok, lp, 3,
                             rows[i].correct ? 1.0f : 0.0f, rows[i].correct, rows[i].failed, 0, rows[i].extracted,
                             rows[i].reason};
        test_check(samples_append(w, &r) == 0, "append: %s", cispo_last_error());
    }
    test_check(samples_close(w) == 0, "samples close");

    test_check(report_write(dir, "demo <run>") == 0, "report: %s", cispo_last_error());
    char out[256];
    snprintf(out, sizeof out, "%s/report.html", dir);
    char *html = cispo_read_file(out, NULL);
    if (!test_check(html != NULL, "report.html exists")) return test_finish("test_report");
    test_check(count(html, "<svg") == 8, "six RL plots and two SFT plots (%d)", count(html, "<svg"));
    test_check(strstr(html, "demo &lt;run&gt;") != NULL, "title escaped");
    // what ran
    const char *wr = strstr(html, "What ran");
    test_check(wr && strstr(wr, "cispo train configs/demo.yaml steps=40 loss=grpo") && strstr(wr, "steps=40 loss=grpo") &&
                   strstr(wr, "0123456789abcdef") && strstr(wr, "node&lt;7&gt;") && strstr(wr, "2026-01-02T03:04:05Z") &&
                   strstr(wr, "/src/configs/demo.yaml"),
               "what ran: command, overrides, commit, host (escaped), start, config");
    test_check(wr && strstr(wr, "runs/x/ckpt-000020.h5") && strstr(wr, "continued"), "the resume is listed as such");
    // plot order, clocks, sparse metric
    const char *r = strstr(html, ">reward_mean"), *a = strstr(html, ">accuracy"), *l = strstr(html, ">response_len_mean"),
               *c = strstr(html, ">clip_frac"), *g = strstr(html, ">grad_norm");
    test_check(r && a && l && c && g && r < a && a < l && l < c && c < g, "main plots first, in order");
    test_check(!strstr(html, ">time"), "clock fields are not plotted");
    const char *h = strstr(html, ">heldout_accuracy");
    test_check(h && strstr(h, "(last 0.65)"), "sparse metric plotted with its last value");
    test_check(strstr(html, "40 steps logged") || strstr(html, "41 steps logged"), "row count");
    // SFT: its loss plotted after the RL plots
    const char *sft = strstr(html, "SFT warm start"), *sl = sft ? strstr(sft, ">loss (last") : NULL;
    test_check(sft && sl && sft > g, "the SFT loss is plotted in its own section");
    // smoothing: a noisy 40-point curve gets a faint raw line and an EMA; a 3-point one does not
    char svg[1 << 16];
    const char *rs = svg_of(html, "reward_mean", svg, sizeof svg);
    test_check(rs && strstr(rs, "class='raw'") && strstr(rs, "stroke-opacity='0.25'") && strstr(rs, "class='ema'") &&
                   strstr(rs, "EMA 0.8"),
               "reward_mean: the raw curve faint under its moving average");
    const char *hs = svg_of(html, "heldout_accuracy", svg, sizeof svg);
    test_check(hs && !strstr(hs, "class='ema'") && count(hs, "<circle") == 3, "held-out accuracy: 3 points, unsmoothed");
    // ticks at round values: the step axis of 1..40 at 0, 10, 20, 30, 40 and the reward axis at tenths
    rs = svg_of(html, "reward_mean", svg, sizeof svg);
    test_check(rs && strstr(rs, "text-anchor='middle'>10<") && strstr(rs, "text-anchor='middle'>40<") &&
                   !strstr(rs, "text-anchor='middle'>13<"),
               "x ticks at multiples of 10");
    test_check(rs && strstr(rs, "text-anchor='end'>0.2<") && strstr(rs, "text-anchor='end'>0.4<") &&
                   !strstr(rs, "0.2100000"),
               "y ticks at round values with few digits");
    test_check(strstr(html, ">step</text>") != NULL, "the x axis is labelled");
    // samples with verdicts at each evaluation step (not at step 0, before RL)
    const char *sm = strstr(html, "Samples at the evaluations");
    const char *s20 = sm ? strstr(sm, "RL step 20") : NULL, *s40 = sm ? strstr(sm, "RL step 40") : NULL;
    test_check(s20 && s40 && s20 < s40 && !strstr(sm, "RL step 0 "), "samples of steps 20 and 40");
    test_check(s20 && strstr(s20, "held-out accuracy 45.0%") && strstr(s20, "3 of the step's 3"), "step 20 header");
    test_check(s20 && s40 && strstr(s20, ">correct<") && strstr(s20, ">wrong<") && strstr(s20, ">failed<") &&
                   strstr(s20, "connection refused") && strstr(s20, "&lt;b&gt;\\boxed{20}&lt;/b&gt;") &&
                   strstr(s20, "so 7 * 3 = 21") && strstr(s20, "Compute 7*3.") && strstr(s20, "<code>21</code>") &&
                   strstr(s20, "correct") < s40,
               "verdicts: correct with its answer, wrong, failed with its reason; completions escaped");
    test_check(s40 && strstr(s40, "2 of the step's 2") && count(s40, ">wrong<") == 2, "step 40: its two wrong samples");
    free(html);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    if (system(path)) {
    }
    return test_finish("test_report");
}
