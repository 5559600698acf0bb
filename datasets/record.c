// datasets/record.c — parsing one data record (ours or verl-style) from JSON, writing it back, and
// the plain prompt template. See datasets/record.h for the accepted keys.
#include "datasets/record.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"


static const char *const verifiers[] = {"math", "code", "exact", "regex", "remote", "genrm", NULL};

const char *datasets_last_error(void) { return cispo_last_error(); }

int record_valid_verifier(const char *name) {
    for (const char *const *v = verifiers; *v; v++)
        if (!strcmp(*v, name)) return 1;
    return 0;
}

// verl data sources whose ground truth is a set of code tests rather than an answer.
static int is_code_source(const char *src) {
    static const char *const code[] = {"code", "apps", "taco", "livecodebench", "codeforces", "leetcode", "humaneval",
                                       "mbpp", "primeintellect", NULL};
    if (!src) return 0;
    char low[128];
    size_t n = strlen(src) < sizeof low - 1 ? strlen(src) : sizeof low - 1;
    for (size_t i = 0; i < n; i++) low[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
    low[n] = 0;
    for (const char *const *c = code; *c; c++)
        if (strstr(low, *c)) return 1;
    return 0;
}

// A string, or a number written as JSON ("3", "0.5"); NULL for other types.
static char *scalar_text(const cJSON *v) {
    if (cJSON_IsString(v)) return cispo_strdup(v->valuestring);
    if (cJSON_IsNumber(v)) return cJSON_PrintUnformatted(v);
    return NULL;
}

static int parse_messages(const cJSON *arr, const char *where, const char *key, data_record_t *r) {
    int n = cJSON_GetArraySize(arr), i = 0;
    if (n == 0) return cispo_fail("%s: key '%s': the message list is empty", where, key);
    r->messages = cispo_malloc((size_t)n * sizeof *r->messages);
    memset(r->messages, 0, (size_t)n * sizeof *r->messages);
    for (const cJSON *m = arr->child; m; m = m->next, i++) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        if (!cJSON_IsObject(m) || !cJSON_IsString(role))
            return cispo_fail("%s: key '%s[%d]': a message needs a \"role\" string", where, key, i);
        if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
            strcmp(role->valuestring, "assistant") && strcmp(role->valuestring, "tool"))
            return cispo_fail("%s: key '%s[%d].role': '%s' is not system, user, assistant or tool", where, key, i,
                           role->valuestring);
        // content: a string; an assistant turn that calls tools may leave it null or out (OpenAI's form)
        int no_content = (!content || cJSON_IsNull(content)) && cJSON_IsArray(calls) && !strcmp(role->valuestring, "assistant");
        if (!cJSON_IsString(content) && !no_content)
            return cispo_fail("%s: key '%s[%d].content': expected a string%s", where, key, i,
                           cJSON_IsArray(calls) ? " (or null beside tool_calls on an assistant turn)" : "");
        if (calls && !cJSON_IsArray(calls))
            return cispo_fail("%s: key '%s[%d].tool_calls': expected a list of calls", where, key, i);
        r->messages[i].role = cispo_strdup(role->valuestring);
        r->messages[i].content = cispo_strdup(cJSON_IsString(content) ? content->valuestring : "");
        int only_basic = cJSON_GetArraySize(m) == 2 && content;
        if (!only_basic) r->messages[i].json = cJSON_PrintUnformatted(m);
        r->n_messages = i + 1;
    }
    return 0;
}

// Code tests: an array of {"stdin","stdout"} or {"input","output"} objects, or verl's
// {"inputs": [...], "outputs": [...]} (possibly as a JSON string) turned into the array form.
static int parse_tests(const cJSON *t, const char *where, const char *key, data_record_t *r) {
    cJSON *parsed = NULL;
    if (cJSON_IsString(t)) {
        parsed = cJSON_Parse(t->valuestring);
        if (!parsed) return cispo_fail("%s: key '%s': a string that is not JSON tests", where, key);
        t = parsed;
    }
    cJSON *arr = NULL;
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(t, "inputs"), *outs = cJSON_GetObjectItemCaseSensitive(t, "outputs");
    if (!ins && !outs && cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t, "input")))  // code_contests' public_tests
        ins = cJSON_GetObjectItemCaseSensitive(t, "input"), outs = cJSON_GetObjectItemCaseSensitive(t, "output");
    if (cJSON_IsArray(t)) {
        arr = cJSON_Duplicate(t, 1);
    } else if (cJSON_IsArray(ins) && cJSON_IsArray(outs) && cJSON_GetArraySize(ins) == cJSON_GetArraySize(outs)) {
        const char *fn = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(t, "fn_name"))
                             ? cJSON_GetObjectItemCaseSensitive(t, "fn_name")->valuestring : NULL;
        arr = cJSON_CreateArray();
        for (const cJSON *a = ins->child, *b = outs->child; a && b; a = a->next, b = b->next) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, fn ? "input" : "stdin", cJSON_Duplicate(a, 1));
            cJSON_AddItemToObject(o, fn ? "output" : "stdout", cJSON_Duplicate(b, 1));
            cJSON_AddItemToArray(arr, o);
        }
        if (fn && !r->fn_name) r->fn_name = cispo_strdup(fn);
    }
    cJSON_Delete(parsed);
    if (!arr) return cispo_fail("%s: key '%s': expected an array of {\"stdin\",\"stdout\"} or {\"input\",\"output\"} tests", where, key);
    int i = 0;
    for (const cJSON *e = arr->child; e; e = e->next, i++) {
        int io = cJSON_GetObjectItemCaseSensitive(e, "stdin") && cJSON_GetObjectItemCaseSensitive(e, "stdout");
        int call = cJSON_GetObjectItemCaseSensitive(e, "input") && cJSON_GetObjectItemCaseSensitive(e, "output");
        if (!io && !call) {
            cJSON_Delete(arr);
            return cispo_fail("%s: key '%s[%d]': a test needs \"stdin\" and \"stdout\" (or \"input\" and \"output\")", where,
                           key, i);
        }
    }
    if (i == 0) {
        cJSON_Delete(arr);
        return cispo_fail("%s: key '%s': no tests", where, key);
    }
    r->tests_json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return 0;
}

// A value by a dotted key path ("reward_model.ground_truth"), or NULL.
static const cJSON *get_path(const cJSON *o, const char *path) {
    char key[256];
    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = 0;
        o = cJSON_GetObjectItemCaseSensitive(o, key);
        path += n + (dot ? 1 : 0);
    }
    return o;
}

// The configured key, else the first alias present; *used gets the key name found.
static const cJSON *find_field(const cJSON *o, const char *key, const char *const *aliases, const char **used) {
    if (key && key[0]) {
        *used = key;
        return get_path(o, key);
    }
    for (const char *const *a = aliases; *a; a++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, *a);
        if (v && !cJSON_IsNull(v)) {
            *used = *a;
            return v;
        }
    }
    *used = aliases[0];
    return NULL;
}

// GSM8K's answers are worked solutions ending "#### 72": the gold answer is what follows the marker.
static void gsm8k_final(data_record_t *r) {
    const char *m = r->answer ? strstr(r->answer, "####") : NULL;
    if (!m) return;
    m += 4;
    while (*m == ' ') m++;
    size_t n = strlen(m);
    while (n && (m[n - 1] == ' ' || m[n - 1] == '\n' || m[n - 1] == '\r')) n--;
    char *a = cispo_strndup(m, n);
    if (!r->response) r->response = r->answer;  // the worked solution serves as the SFT demonstration
    else free(r->answer);
    r->answer = a;
}

static const char *const PROMPT_ALIASES[] = {"prompt", "problem", "question", "Problem", "Question", "instruction", NULL};
static const char *const ANSWER_ALIASES[] = {"answer", "Answer", "final_answer", "expected_answer", NULL};
static const char *const TESTS_ALIASES[] = {"tests", "test_cases", "input_output", "public_tests", NULL};
static const char *const ID_ALIASES[] = {"id", "unique_id", "ID", "problem_id", "task_id", NULL};
static const char *const RESPONSE_ALIASES[] = {"response", NULL};

static int parse_record(const cJSON *o, const char *where, const char *default_id, const record_fields_t *fl,
                        data_record_t *r) {
    static const record_fields_t none = {0};
    if (!fl) fl = &none;
    if (!cJSON_IsObject(o)) return cispo_fail("%s: the line is not a JSON object", where);
    const char *id_key, *prompt_key, *answer_key, *tests_key, *resp_key;
    const cJSON *id = find_field(o, fl->id_key, ID_ALIASES, &id_key);
    if (id && !cJSON_IsNull(id) && !(r->id = scalar_text(id)))
        return cispo_fail("%s: key '%s': expected a string or a number", where, id_key);
    if (!r->id) r->id = cispo_strdup(default_id);
    if (!r->id[0]) return cispo_fail("%s: key 'id': empty", where);

    const cJSON *prompt = find_field(o, fl->prompt_key, PROMPT_ALIASES, &prompt_key);
    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(o, "messages");
    if (!prompt && !(fl->prompt_key && fl->prompt_key[0]) && cJSON_IsArray(messages)) prompt = messages, prompt_key = "messages";
    if (cJSON_IsString(prompt)) {
        r->prompt = cispo_strdup(prompt->valuestring);
    } else if (cJSON_IsArray(prompt)) {
        if (parse_messages(prompt, where, prompt_key, r)) return -1;
    } else if (prompt) {
        return cispo_fail("%s: key '%s': expected text or a list of {\"role\",\"content\"} messages", where, prompt_key);
    } else if (fl->prompt_key && fl->prompt_key[0]) {
        return cispo_fail("%s: key '%s' (prompt_key): missing", where, fl->prompt_key);
    } else {
        return cispo_fail("%s: key 'prompt': missing (a record needs \"prompt\" as text or messages, \"messages\", or one "
                          "of problem/question/instruction; or set prompt_key)", where);
    }

    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(o, "tools");
    if (tools && !cJSON_IsNull(tools) && !cJSON_IsArray(tools))
        return cispo_fail("%s: key 'tools': expected a list of tool (function) definitions", where);
    if (cJSON_IsArray(tools)) r->tools_json = cJSON_PrintUnformatted(tools);

    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "data_source");
    if (cJSON_IsString(src)) r->data_source = cispo_strdup(src->valuestring);
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(o, "fn_name");
    if (fn && !cJSON_IsString(fn) && !cJSON_IsNull(fn)) return cispo_fail("%s: key 'fn_name': expected a string", where);
    if (cJSON_IsString(fn)) r->fn_name = cispo_strdup(fn->valuestring);
    const cJSON *answer = find_field(o, fl->answer_key, ANSWER_ALIASES, &answer_key);
    if (answer && !cJSON_IsNull(answer) && !(r->answer = scalar_text(answer))) {
        if (!cJSON_IsArray(answer)) return cispo_fail("%s: key '%s': expected a string or a number", where, answer_key);
        r->answer = cJSON_PrintUnformatted(answer);  // several acceptable answers: the checker reads the list
    }
    const cJSON *resp = find_field(o, fl->response_key, RESPONSE_ALIASES, &resp_key);
    if (resp && !cJSON_IsNull(resp) && !cJSON_IsString(resp)) return cispo_fail("%s: key '%s': expected a string", where, resp_key);
    if (cJSON_IsString(resp)) r->response = cispo_strdup(resp->valuestring);
    gsm8k_final(r);
    const cJSON *tests = find_field(o, fl->tests_key, TESTS_ALIASES, &tests_key);
    if (tests && !cJSON_IsNull(tests) && !(cJSON_IsString(tests) && !tests->valuestring[0]) &&
        parse_tests(tests, where, tests_key, r))
        return -1;

    const cJSON *verifier = cJSON_GetObjectItemCaseSensitive(o, "verifier");
    if (verifier && !cJSON_IsString(verifier)) return cispo_fail("%s: key 'verifier': expected a string", where);
    if (verifier) r->verifier = cispo_strdup(verifier->valuestring);

    // verl: reward_model {ground_truth, style}
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(o, "reward_model");
    if (rm) {
        if (!cJSON_IsObject(rm)) return cispo_fail("%s: key 'reward_model': expected {\"ground_truth\", \"style\"}", where);
        const cJSON *gt = cJSON_GetObjectItemCaseSensitive(rm, "ground_truth");
        const cJSON *style = cJSON_GetObjectItemCaseSensitive(rm, "style");
        const char *st = cJSON_IsString(style) ? style->valuestring : "rule";
        if (strcmp(st, "rule") && strcmp(st, "model"))
            return cispo_fail("%s: key 'reward_model.style': '%s' is not rule or model", where, st);
        int code = (r->verifier && !strcmp(r->verifier, "code")) || (!r->verifier && is_code_source(r->data_source));
        if (code && !r->tests_json) {
            if (!gt || parse_tests(gt, where, "reward_model.ground_truth", r)) {
                if (!gt) return cispo_fail("%s: key 'reward_model.ground_truth': missing (code source '%s' needs tests)",
                                        where, r->data_source ? r->data_source : "?");
                return -1;
            }
        } else if (!code && !r->answer && gt && !cJSON_IsNull(gt)) {
            if (!(r->answer = scalar_text(gt))) {
                if (!cJSON_IsArray(gt)) return cispo_fail("%s: key 'reward_model.ground_truth': expected text, a number or a list", where);
                r->answer = cJSON_PrintUnformatted(gt);  // several acceptable answers: the checker reads the list
            }
        }
        if (!r->verifier) r->verifier = cispo_strdup(!strcmp(st, "model") ? "genrm" : code ? "code" : "math");
    }
    if (!r->verifier) {
        if (r->tests_json) r->verifier = cispo_strdup("code");
        else if (r->answer) r->verifier = cispo_strdup("math");
        else return cispo_fail("%s: key 'verifier': missing, and neither \"answer\" nor \"tests\" says which to use", where);
    }
    if (!record_valid_verifier(r->verifier))
        return cispo_fail("%s: key 'verifier': '%s' is not one of math, code, exact, regex, remote, genrm", where, r->verifier);
    if ((!strcmp(r->verifier, "math") || !strcmp(r->verifier, "exact") || !strcmp(r->verifier, "regex")) && !r->answer)
        return cispo_fail("%s: key 'answer': missing (verifier '%s' needs a gold answer)", where, r->verifier);
    if (!strcmp(r->verifier, "code") && !r->tests_json)
        return cispo_fail("%s: key 'tests': missing (verifier 'code' needs tests)", where);

    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(o, "meta");
    if (!meta) meta = cJSON_GetObjectItemCaseSensitive(o, "extra_info");
    if (meta && !cJSON_IsNull(meta)) {
        if (!cJSON_IsObject(meta)) return cispo_fail("%s: key 'meta': expected an object", where);
        r->meta_json = cJSON_PrintUnformatted(meta);
    }
    return 0;
}

int record_from_json(const cJSON *obj, const char *where, const char *default_id, data_record_t *out) {
    return record_from_json_fields(obj, where, default_id, NULL, out);
}

int record_from_json_fields(const cJSON *obj, const char *where, const char *default_id, const record_fields_t *fields,
                            data_record_t *out) {
    memset(out, 0, sizeof *out);
    if (parse_record(obj, where, default_id, fields, out)) {
        record_free(out);
        return -1;
    }
    return 0;
}

int record_parse_line(const char *line, const char *where, const char *default_id, data_record_t *out) {
    return record_parse_line_fields(line, where, default_id, NULL, out);
}

int record_parse_line_fields(const char *line, const char *where, const char *default_id, const record_fields_t *fields,
                             data_record_t *out) {
    memset(out, 0, sizeof *out);
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithOpts(line, &end, 1);
    if (!o) {
        const char *at = end ? end : cJSON_GetErrorPtr();
        return cispo_fail("%s: not valid JSON at column %ld", where, at && at >= line ? (long)(at - line) + 1 : 0L);
    }
    int rc = record_from_json_fields(o, where, default_id, fields, out);
    cJSON_Delete(o);
    return rc;
}

struct cJSON *record_message_json(const chat_message_t *m) {
    cJSON *o = m->json ? cJSON_Parse(m->json) : NULL;
    if (o) return o;
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "role", m->role);
    cJSON_AddStringToObject(o, "content", m->content);
    return o;
}

char *record_to_json(const data_record_t *r) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    if (r->prompt) {
        cJSON_AddStringToObject(o, "prompt", r->prompt);
    } else {
        cJSON *arr = cJSON_AddArrayToObject(o, "prompt");
        for (int i = 0; i < r->n_messages; i++) cJSON_AddItemToArray(arr, record_message_json(&r->messages[i]));
    }
    if (r->tools_json) cJSON_AddItemToObject(o, "tools", cJSON_Parse(r->tools_json));
    cJSON_AddStringToObject(o, "verifier", r->verifier);
    if (r->answer) cJSON_AddStringToObject(o, "answer", r->answer);
    if (r->tests_json) cJSON_AddItemToObject(o, "tests", cJSON_Parse(r->tests_json));
    if (r->fn_name) cJSON_AddStringToObject(o, "fn_name", r->fn_name);
    if (r->response) cJSON_AddStringToObject(o, "response", r->response);
    if (r->data_source) cJSON_AddStringToObject(o, "data_source", r->data_source);
    if (r->meta_json) cJSON_AddItemToObject(o, "meta", cJSON_Parse(r->meta_json));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

void record_free(data_record_t *r) {
    free(r->id);
    free(r->prompt);
    for (int i = 0; i < r->n_messages; i++) {
        free(r->messages[i].role);
        free(r->messages[i].content);
        free(r->messages[i].json);
    }
    free(r->tools_json);
    free(r->messages);
    free(r->verifier);
    free(r->answer);
    free(r->tests_json);  // cJSON_Print* strings come from cJSON's allocator: malloc by default
    free(r->fn_name);
    free(r->meta_json);
    free(r->response);
    free(r->data_source);
    memset(r, 0, sizeof *r);
}

char *record_prompt_text(const data_record_t *r) {
    if (r->prompt || (r->n_messages == 1 && !strcmp(r->messages[0].role, "user"))) {
        const char *p = r->prompt ? r->prompt : r->messages[0].content;
        size_t n = strlen(p);
        char *s = cispo_malloc(n + 2);
        memcpy(s, p, n);
        memcpy(s + n, "\n", 2);
        return s;
    }
    size_t cap = 16;
    for (int i = 0; i < r->n_messages; i++) cap += strlen(r->messages[i].content) + 16;
    char *s = cispo_malloc(cap), *w = s;
    for (int i = 0; i < r->n_messages; i++) {
        const char *role = r->messages[i].role;
        const char *label = !strcmp(role, "system") ? "System"
                            : !strcmp(role, "user")  ? "User"
                            : !strcmp(role, "tool")  ? "Tool"
                                                     : "Assistant";
        w += sprintf(w, "%s: %s\n", label, r->messages[i].content);
    }
    strcpy(w, "Assistant:\n");
    return s;
}
