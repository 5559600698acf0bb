// model/jinja.h — the Jinja2 subset that Hugging Face chat templates are written in, rendered as
// transformers' apply_chat_template renders them (jinja2's sandboxed environment with trim_blocks and
// lstrip_blocks, the loop-controls extension, a tojson without HTML escaping, raise_exception and
// strftime_now). docs/model.md "Chat templates" lists what is supported.
// defines: jinja_template_t, jinja_parse, jinja_render, jinja_free, jinja_json_parse, JINJA_JSON_FLOAT
//
// Supported: text with {{ }}, {% %}, {# #} and the -/+ whitespace controls; statements if/elif/else,
// for (tuple targets, `if` filter, else, loop.index/index0/revindex/revindex0/first/last/length/
// previtem/nextitem, break, continue), set (names, namespace attributes, block set, filtered block set),
// filter blocks, macro (positional and keyword arguments with defaults), generation (rendered as its
// body); expressions: literals
// (strings, numbers, true/false/none in either case, lists, dicts, tuples), names, .attr, [index],
// slices, calls, filters, tests (is [not]), not/and/or, + - * / // % ** ~, comparisons, in/not in,
// `a if c else b`; globals range, namespace, raise_exception, strftime_now, dict; the filters, tests
// and string/dict methods listed in model/jinja_eval.c. Anything else fails at parse time (or at run
// time for an unknown filter, test or method) with a message naming the construct and its line:column.
#ifndef CISPO_MODEL_JINJA_H
#define CISPO_MODEL_JINJA_H

#include <stddef.h>

struct cJSON;
typedef struct jinja_template jinja_template_t;

// Parses a template. name (e.g. "tokenizer_config.json:chat_template") prefixes every error.
// NULL with cispo_last_error() = "name:line:col: problem" on failure.
jinja_template_t *jinja_parse(const char *src, size_t len, const char *name);
// Renders with the variables of a JSON object (messages, tools, add_generation_prompt, bos_token, ...).
// A new NUL-terminated string (caller frees; *len_out may be NULL), or NULL with cispo_last_error()
// naming the template, line:column and the problem (raise_exception's message included).
char *jinja_render(const jinja_template_t *t, const struct cJSON *vars, size_t *len_out);
void jinja_free(jinja_template_t *t);

// JSON text parsed for jinja_render: numbers written with a fraction or an exponent (1.0, 2e5) are
// marked floats (JINJA_JSON_FLOAT in the item's type) and render as Python renders the floats of
// json.loads (1.0, 200000.0); cJSON alone keeps only the double, and an integral one renders as an
// int. NULL when the text is not JSON. Free with cJSON_Delete.
#define JINJA_JSON_FLOAT (1 << 14)
struct cJSON *jinja_json_parse(const char *text);

#endif
