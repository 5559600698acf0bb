// rl/verifier.h — the interface every reward verifier implements (math, exact, regex, code, remote).
// defines: verdict_t, verify_request_t, verifier_t, verifier_find
#ifndef CISPO_RL_VERIFIER_H
#define CISPO_RL_VERIFIER_H

typedef struct {
    int correct;            // 1: the response is right
    double reward;          // the reward to train on (usually correct ? 1 : 0)
    int failed;             // 1: the verifier itself failed (remote error, sandbox fault): not a verdict,
                            //    reported, never scored silently
    char extracted[512];    // the answer (or code) as extracted from the response, truncated
    char reason[256];       // one short line: why
} verdict_t;

typedef struct {
    const char *gold;       // gold answer (math, exact) or pattern (regex); may be NULL
    const char *response;   // the full model response
    const char *tests_json; // code: JSON array of {"stdin","stdout"} or call-based {"input","output"}; or NULL
    const char *fn_name;    // code: function name for call-based tests; or NULL
    // Fields for the remote verifiers (genrm, remote); NULL when absent. Keep new fields at the end.
    const char *question;   // the prompt as text: genrm's {question}, the remote service's "prompt"
    const char *meta_json;  // the record's meta object as JSON text: the remote service's "meta"
} verify_request_t;

typedef struct {
    const char *name;       // "math", "exact", "regex", "code", ...
    // Fills *out. Returns 0, or -1 when the verifier could not run (out->failed = 1, reason says why).
    int (*verify)(const verify_request_t *req, verdict_t *out);
} verifier_t;

// The registered verifier of that name, or NULL.
const verifier_t *verifier_find(const char *name);

#endif
