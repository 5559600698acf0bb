// trainer/rl_reward.c — completions to verdicts: decode each completion with the tokenizer (EOS and
// other special tokens dropped) and reward it with its record's verifier in the worker pool. A
// multi-turn completion is graded on its final turn (rl/rollout.h answer_from).
// defines: train_reward
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "trainer/train.h"

int train_reward(train_t *t, const int *ex, const train_set_t *set, const rollout_sample_t *s, int n, char **texts,
                verdict_t *out) {
    reward_job_t *jobs = cispo_calloc((size_t)n, sizeof(reward_job_t));
    for (int i = 0; i < n; i++) {
        const train_example_t *e = &set->ex[ex[i]];
        // multi-turn tool use: the final turn, after the last tool result (0 in a single-turn rollout)
        int from = s[i].answer_from < s[i].n_tokens ? s[i].answer_from : s[i].n_tokens;
        int len = s[i].n_tokens - from - (s[i].stop == STOP_EOS && from < s[i].n_tokens);
        texts[i] = tokenizer_decode(t->tok, s[i].tokens + from, (size_t)len, TOKENIZER_SKIP_SPECIAL | TOKENIZER_LOSSY, NULL);
        if (!texts[i]) texts[i] = cispo_strdup("");
        jobs[i].verifier = e->verifier ? e->verifier : t->cfg.verifier;
        jobs[i].req.gold = e->answer;
        jobs[i].req.response = texts[i];
        jobs[i].req.tests_json = e->tests_json;
        jobs[i].req.fn_name = e->fn_name;
        jobs[i].req.question = e->prompt;  // the LLM judge's {question}
    }
    int failed = reward_pool_run(t->pool, jobs, n, out);
    free(jobs);
    return failed;
}
