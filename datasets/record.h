// datasets/record.h — one prompt of a data set (docs/rl.md "Data record"), parsed from a JSON object, and
// the plain prompt template of the tiny model.
// defines: data_record_t, chat_message_t, record_fields_t, record_from_json, record_from_json_fields,
//          record_parse_line, record_parse_line_fields, record_to_json, record_free, record_prompt_text,
//          record_valid_verifier, record_message_json, datasets_last_error
// datasets/ uses only base/: errors are recorded with cispo_fail (base/common.h); datasets_last_error()
// reads them.
//
// Accepted JSONL lines (one object each):
//   ours: {"id", "prompt": "text" | [{"role","content"}...] (or "messages": [...]), "verifier",
//          "answer", "tests": [{"stdin","stdout"} | {"input","output"}...], "fn_name", "meta": {...},
//          "response" (an SFT demonstration, optional), "tools": [function definitions] (given to
//          the chat template)}; messages may be system, user, assistant (with "tool_calls", content
//          null or absent beside them) and tool turns ("tool_call_id", "name"): every field of a message
//          reaches the chat template as written
//   verl: {"prompt": [{"role","content"}...], "reward_model": {"ground_truth", "style"},
//          "data_source", "extra_info": {...}}: the ground truth becomes the answer (or the tests, for
//          code sources), style "model" becomes the genrm verifier, extra_info becomes meta.
// A missing verifier is inferred: tests -> code, an answer -> math.
// Other data sets load without rewriting: when "prompt"/"messages" is absent the prompt is the first of
// problem, question, Problem, Question, instruction (MATH-500, DeepScaleR, AIME, GSM8K); the answer the
// first of answer, Answer, final_answer, expected_answer (a list: several acceptable answers); the id
// the first of id, unique_id, ID, problem_id, task_id; the tests the first of tests, test_cases,
// input_output (APPS/TACO JSON text {"inputs","outputs","fn_name"}), public_tests (code_contests
// {"input": [...], "output": [...]}). An answer holding "#### X" (GSM8K) is graded against X and the
// whole text becomes the SFT demonstration. record_fields_t names other keys (dotted paths allowed).
#ifndef CISPO_DATASETS_RECORD_H
#define CISPO_DATASETS_RECORD_H

struct cJSON;

typedef struct {
    char *role;     // "system" | "user" | "assistant" | "tool"
    char *content;  // "" when the message has none (an assistant turn that only calls tools)
    char *json;     // the whole message as JSON text (tool_calls, tool_call_id, name, reasoning_content...:
                    // what a chat template reads), or NULL when it has only role and content
} chat_message_t;

typedef struct {
    char *id;                  // the record's id; "<file basename>:<line>" when the line has none
    char *prompt;              // the prompt as text, or NULL when given as messages
    chat_message_t *messages;  // [n_messages], or NULL
    int n_messages;
    char *verifier;            // math | code | exact | regex | remote | genrm
    char *answer;              // gold answer (math, exact), pattern (regex), or NULL
    char *tests_json;          // code: the tests as a JSON array text, or NULL
    char *fn_name;             // code: function name for call-based tests, or NULL
    char *meta_json;           // the meta object as JSON text, or NULL
    char *response;            // an SFT demonstration (the text after the prompt), or NULL
    char *data_source;         // verl's data_source, or NULL
    char *tools_json;          // "tools": the function definitions a chat template is given, as JSON text, or NULL
} data_record_t;

// Keys of a data set's fields (the run config's prompt_key, answer_key, ...): NULL or "" = the
// defaults and aliases above; "a.b" reads a nested object.
typedef struct {
    const char *prompt_key, *answer_key, *response_key, *id_key, *tests_key;
} record_fields_t;

// The last error recorded by a datasets/ function on this thread ("" if none): one line naming the
// file, line, key and problem (the same message as cispo_last_error()).
const char *datasets_last_error(void);

// 1 when name is a verifier a record may name.
int record_valid_verifier(const char *name);

// Fills *out from a parsed JSON object. where ("file:line") prefixes every error; default_id is used
// when the object has no "id". Returns 0, or -1 with datasets_last_error() = "where: key 'k': problem".
int record_from_json(const struct cJSON *obj, const char *where, const char *default_id, data_record_t *out);
// The same with a field mapping (fields may be NULL).
int record_from_json_fields(const struct cJSON *obj, const char *where, const char *default_id,
                            const record_fields_t *fields, data_record_t *out);
// Parses one JSONL line (NUL-terminated) into *out; errors as record_from_json.
int record_parse_line(const char *line, const char *where, const char *default_id, data_record_t *out);
int record_parse_line_fields(const char *line, const char *where, const char *default_id, const record_fields_t *fields,
                             data_record_t *out);
// The record as one JSON line (no newline), in our format. Caller frees.
char *record_to_json(const data_record_t *r);
// One message as the JSON object a chat template reads (every field the record gave it). Caller deletes.
struct cJSON *record_message_json(const chat_message_t *m);
void record_free(data_record_t *r);

// The prompt as the plain text the tiny model sees (no chat template). A text prompt, or a single
// user message, renders as "<text>\n"; other conversations render each message as
// "System: ...\n" / "User: ...\n" / "Assistant: ...\n" and end with "Assistant:\n". The model's
// response follows directly; for SFT the text is prompt + response + EOS. Caller frees.
char *record_prompt_text(const data_record_t *r);

#endif
