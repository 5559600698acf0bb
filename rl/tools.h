// rl/tools.h — tools a policy may call during a multi-turn rollout (docs/rl.md "Tool use"): the call
// formats of chat templates as a small declarative table, the parser of a call, a registry of tools
// (calculator: an exact rational evaluator; python: a run in the code sandbox service), and the
// plain format of a tool result when no chat template renders it.
// defines: tool_format_t, tool_formats, tool_format_find, tool_call_t, tool_call_parse, tool_call_free,
//          tools_t, tools_create, tools_run, tool_calculator, tool_result_plain
//
// A format says where a call starts and ends in the generated text and how its body names the tool:
//   hermes (Qwen, Hermes): <tool_call>\n{"name": "calculator", "arguments": {"expression": "2+3"}}\n</tool_call>
//   demo   (the tiny tokenizer's): <<calculator 347*29+5>>   result "\n= 10063\n"
// A call that does not parse, names no tool of the registry or fails is answered with an error
// message as its result ("error: ..."), never a crash: the policy sees it and learns from it.
#ifndef CISPO_RL_TOOLS_H
#define CISPO_RL_TOOLS_H

#include <stddef.h>

enum tool_body { TOOL_BODY_JSON = 0, TOOL_BODY_NAME_ARGS = 1 };

typedef struct {
    const char *name;                       // run key tool_format
    const char *call_open, *call_close;     // a call is the text between them
    int body;                               // enum tool_body: {"name","arguments"} JSON | "name args"
    const char *result_open, *result_close; // plain result format (no chat template)
} tool_format_t;

extern const tool_format_t tool_formats[];
extern const int tool_n_formats;
// The format named name, or NULL.
const tool_format_t *tool_format_find(const char *name);

typedef struct {
    char *name;  // tool name (NULL when the body did not parse)
    char *args;  // argument text: the expression, the code (a JSON object's single string field, or
                 // its JSON text when it has several)
} tool_call_t;

// Finds the first complete call in text (call_open ... call_close). Returns 0 when there is none
// (*end untouched), 1 with *out filled and *end the offset just past call_close. A body that does
// not parse gives 1 with out->name NULL and out->args the reason.
int tool_call_parse(const tool_format_t *f, const char *text, tool_call_t *out, size_t *end);
void tool_call_free(tool_call_t *c);

typedef struct {
    char names[8][32];        // registered tools, in the order of the run key
    int n;
    char sandbox_url[512];    // python: a SandboxFusion-compatible service ("" : not configured)
    double timeout_s;         // python: seconds per run
    int max_result_chars;    // results are cut to this many characters (an error says so)
} tools_t;

// A registry from a comma-separated list ("calculator,python"). sandbox_url may be NULL or "".
// 0, or -1 naming the unknown tool and the known ones.
int tools_create(tools_t *t, const char *list, const char *sandbox_url, double timeout_s, int max_result_chars);
// Runs a parsed call; *result is a new string (caller frees): the tool's output, or "error: ..." for a
// malformed call, an unknown tool or a failing one. Returns 0 on success, 1 on a tool error.
int tools_run(const tools_t *t, const tool_call_t *call, char **result);
// The exact value of an arithmetic expression (integers and decimals, + - * / ^, parentheses, unary
// minus) as an integer or a reduced fraction p/q, into buf. 0, or -1 with the reason in buf.
int tool_calculator(const char *expr, char *buf, size_t cap);
// The plain rendering of a result: result_open + result + result_close (caller frees).
char *tool_result_plain(const tool_format_t *f, const char *result);

#endif
