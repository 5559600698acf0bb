// model/chat_template.h — a model's chat template (Hugging Face `chat_template`, from chat_template.jinja
// or tokenizer_config.json) rendered with messages, tools, add_generation_prompt and the special tokens,
// as transformers' apply_chat_template renders it (model/jinja.h is the engine); and the split of a
// conversation into prompt and assistant turns that SFT trains on.
// defines: chat_template_t, chat_template_load_dir, chat_template_load_file, chat_template_from_string,
//          chat_template_render, chat_template_free
#ifndef CISPO_MODEL_CHAT_TEMPLATE_H
#define CISPO_MODEL_CHAT_TEMPLATE_H

#include "model/jinja.h"

struct cJSON;

typedef struct {
    jinja_template_t *tmpl;
    char *source;     // the template text
    char *origin;     // where it came from ("DIR/chat_template.jinja", "DIR/tokenizer_config.json:chat_template")
    char *bos_token;  // tokenizer_config.json's special tokens (strings or AddedToken objects); NULL when absent
    char *eos_token;
    char *pad_token;
    char *unk_token;
} chat_template_t;

// The chat template of a model or tokenizer directory: DIR/chat_template.jinja when present (as
// transformers prefers), else tokenizer_config.json's "chat_template" (a string, or a list of
// {"name","template"} from which "default" is taken). Special tokens come from DIR/tokenizer_config.json.
// Returns 0 with *out set, 1 when the directory has no chat template (*out NULL), -1 with
// cispo_last_error() naming the file and the problem (a template that does not parse: line:column).
int chat_template_load_dir(const char *dir, chat_template_t **out);
// A template file (.jinja text, or a tokenizer_config.json). Special tokens are read from
// tokenizer_config.json beside it when there is one. NULL with cispo_last_error() on failure.
chat_template_t *chat_template_load_file(const char *path);
// A template from text; name prefixes errors. Special tokens unset.
chat_template_t *chat_template_from_string(const char *src, const char *name);

// Renders messages (a JSON array of {"role","content",...}) with tools (a JSON array, or NULL: the
// variable is undefined), add_generation_prompt, the special tokens, and extra variables (a JSON
// object such as {"enable_thinking": false}, or NULL). A new string (caller frees), or NULL with
// cispo_last_error() (the template's raise_exception message included).
char *chat_template_render(const chat_template_t *ct, const struct cJSON *messages, const struct cJSON *tools,
                           int add_generation_prompt, const struct cJSON *extra);
void chat_template_free(chat_template_t *ct);

#endif
