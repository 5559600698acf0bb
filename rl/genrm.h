// rl/genrm.h — the "genrm" verifier: a generative reward model (LLM judge) behind an OpenAI-compatible
// chat completions endpoint (vLLM, SGLang, TGI, llama.cpp server, OpenAI) grades a response against
// the reference answer (docs/verifiers.md "Remote rewards").
// defines: genrm_config_t, genrm_config_default, genrm_config_from_env, genrm_config_free,
//          genrm_render_prompt, genrm_parse_score, genrm_judge, genrm_verify, GENRM_DEFAULT_TEMPLATE
//
// One judgement = one POST <url>/v1/chat/completions with
//   {"model": M, "messages": [{"role": "user", "content": <prompt>}], "temperature": T, "max_tokens": N}
// through http_client (timeout, retries with backoff). The prompt is the template with {question},
// {reference} and {response} replaced (one pass: text inside a substituted value is never expanded
// again; other braces are left alone). The reply is choices[0].message.content.
//
// Score parsing (genrm_parse_score). A reasoning block "<think> ... </think>" at the start is skipped
// (only the text after the last </think> counts). Then, first rule that matches wins:
//   1. the LAST "Score: X" (case-insensitive; ':' or '=', optional markdown '*', X a decimal number,
//      an optional "/N" after it ignored): "Score: 7", "**Score:** 8/10", "score = 0.5";
//   2. the LAST "[[X]]" (MT-Bench style): "Rating: [[6]]";
//   3. the whole reply is a bare number (spaces, '*' and a final '.' allowed): "9";
//   4. the whole reply is YES or NO (any case, spaces, '*' and a final '.' allowed): YES = the top of
//      the scale, NO = the bottom.
// Anything else is unparseable: the verdict is FAILED (reason quotes the reply), never a reward of 0,
// and so is a score outside [scale_min, scale_max].
// reward = (score - scale_min) / (scale_max - scale_min), in [0, 1]; correct = reward >= correct_at.
//
// Configuration from the environment (genrm_config_from_env; the registry's "genrm" verifier reads it
// at each call, so forked scoring workers see what the trainer was started with):
//   CISPO_GENRM_URL          server base URL, e.g. http://judge:8000 (required); "/v1/chat/completions"
//                            is appended unless the URL already ends with "/chat/completions"
//   CISPO_GENRM_MODEL        model name the server serves (required)
//   CISPO_GENRM_API_KEY_ENV  NAME of the variable holding the API key (default OPENAI_API_KEY); an
//                            unset or empty key sends no Authorization header
//   CISPO_GENRM_TEMPLATE     prompt template file (must contain {response}); default: the built-in one
//   CISPO_GENRM_SCALE        "MIN:MAX" of the judge's score (default 0:10, as the built-in template asks)
//   CISPO_GENRM_CORRECT_AT   reward at or above which the verdict counts as correct (default 0.5)
//   CISPO_GENRM_TEMPERATURE  sampling temperature (default 0)
//   CISPO_GENRM_MAX_TOKENS   reply budget (default 1024)
//   CISPO_GENRM_TIMEOUT      seconds per attempt (default 60)
//   CISPO_GENRM_RETRIES      retries after the first attempt (default 3)
#ifndef CISPO_RL_GENRM_H
#define CISPO_RL_GENRM_H

#include "rl/http_client.h"
#include "rl/verifier.h"

typedef struct {
    char *url;            // the full chat completions URL
    char *model;
    char *api_key;        // or NULL
    char *template_text;  // or NULL: GENRM_DEFAULT_TEMPLATE
    double scale_min, scale_max;
    double correct_at;
    double temperature;
    int max_tokens;
    http_options_t http;  // timeout, attempts, backoff; bearer_token is set from api_key per call
} genrm_config_t;

extern const char GENRM_DEFAULT_TEMPLATE[];

// Defaults as listed above, url and model NULL (the caller sets them; strings are malloc'ed and
// owned by the config: use cispo_strdup).
genrm_config_t genrm_config_default(void);
// From the CISPO_GENRM_* variables. Returns 0, or -1 naming the variable and what to set it to.
int genrm_config_from_env(genrm_config_t *cfg);
void genrm_config_free(genrm_config_t *cfg);

// The template with its placeholders filled (NULL values render as ""). Caller frees.
char *genrm_render_prompt(const char *template_text, const char *question, const char *reference,
                          const char *response);
// Parses the judge's reply by the rules above. Returns 0 with *score set, or -1 (unparseable).
int genrm_parse_score(const char *reply, double scale_min, double scale_max, double *score);

// One judgement. Fills *out; returns 0, or -1 with out->failed = 1 and out->reason naming the URL and
// the failure (connection, HTTP status, attempts, malformed or unparseable reply). out->extracted
// holds the start of the judge's reply.
int genrm_judge(const genrm_config_t *cfg, const char *question, const char *reference, const char *response,
                verdict_t *out);

// The registry's "genrm" entry (rl/verifier.c): req->question, req->gold (the reference) and
// req->response; configuration from the environment, read at each call.
int genrm_verify(const verify_request_t *req, verdict_t *out);

#endif
