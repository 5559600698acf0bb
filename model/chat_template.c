// model/chat_template.c — loading a model's chat template and rendering conversations with it
// (model/chat_template.h): the variables transformers' apply_chat_template passes (messages, tools,
// add_generation_prompt, bos_token, eos_token, pad_token, unk_token, and the caller's extras).
// defines: chat_template_load_dir, chat_template_load_file, chat_template_from_string,
//          chat_template_render, chat_template_free
#include "model/chat_template.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/common.h"

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

// A special token of tokenizer_config.json: a string, or an AddedToken object {"content": ...}.
static char *special(const cJSON *cfg, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = cJSON_GetObjectItemCaseSensitive(v, "content");
    return cJSON_IsString(v) ? cispo_strdup(v->valuestring) : NULL;
}

chat_template_t *chat_template_from_string(const char *src, const char *name) {
    jinja_template_t *t = jinja_parse(src, strlen(src), name);
    if (!t) return NULL;
    chat_template_t *ct = cispo_calloc(1, sizeof *ct);
    ct->tmpl = t;
    ct->source = cispo_strdup(src);
    ct->origin = cispo_strdup(name);
    return ct;
}

// The "chat_template" of a parsed tokenizer_config.json: NULL when absent; *bad set when malformed.
static const char *config_template(const cJSON *cfg, int *bad) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(cfg, "chat_template");
    *bad = 0;
    if (!t || cJSON_IsNull(t)) return NULL;
    if (cJSON_IsString(t)) return t->valuestring;
    if (cJSON_IsArray(t)) {  // named templates: "default" is the one apply_chat_template uses
        for (const cJSON *e = t->child; e; e = e->next) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(e, "name"), *tx = cJSON_GetObjectItemCaseSensitive(e, "template");
            if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default") && cJSON_IsString(tx)) return tx->valuestring;
        }
    }
    *bad = 1;
    return NULL;
}

static void take_specials(chat_template_t *ct, const cJSON *cfg) {
    ct->bos_token = special(cfg, "bos_token");
    ct->eos_token = special(cfg, "eos_token");
    ct->pad_token = special(cfg, "pad_token");
    ct->unk_token = special(cfg, "unk_token");
}

static cJSON *read_json(const char *path) {
    size_t n;
    char *text = cispo_read_file(path, &n);
    if (!text) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) cispo_fail("%s: not valid JSON", path);
    return j;
}

int chat_template_load_dir(const char *dir, chat_template_t **out) {
    *out = NULL;
    char jpath[4096], cpath[4096];
    snprintf(jpath, sizeof jpath, "%s/chat_template.jinja", dir);
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    cJSON *cfg = NULL;
    if (file_exists(cpath) && !(cfg = read_json(cpath))) return -1;
    chat_template_t *ct = NULL;
    if (file_exists(jpath)) {
        size_t n;
        char *src = cispo_read_file(jpath, &n);
        if (!src) return cJSON_Delete(cfg), -1;
        ct = chat_template_from_string(src, jpath);
        free(src);
        if (!ct) return cJSON_Delete(cfg), -1;
    } else if (cfg) {
        int bad;
        const char *src = config_template(cfg, &bad);
        if (bad) {
            cJSON_Delete(cfg);
            return cispo_fail("%s: key 'chat_template': expected a string or a list of {\"name\", \"template\"} with a "
                              "\"default\"", cpath);
        }
        if (src) {
            char name[4200];
            snprintf(name, sizeof name, "%s:chat_template", cpath);
            if (!(ct = chat_template_from_string(src, name))) return cJSON_Delete(cfg), -1;
        }
    }
    if (!ct) {
        cJSON_Delete(cfg);
        return 1;
    }
    if (cfg) take_specials(ct, cfg);
    cJSON_Delete(cfg);
    *out = ct;
    return 0;
}

chat_template_t *chat_template_load_file(const char *path) {
    size_t n = strlen(path);
    if (n >= 5 && !strcmp(path + n - 5, ".json")) {
        char *dir = cispo_strdup(path), *slash = strrchr(dir, '/');
        if (slash) *slash = 0;
        else strcpy(dir, ".");
        cJSON *cfg = read_json(path);
        if (!cfg) return free(dir), NULL;
        int bad;
        const char *src = config_template(cfg, &bad);
        chat_template_t *ct = NULL;
        if (!src) {
            cispo_fail("%s: key 'chat_template': %s", path, bad ? "expected a string or a list with a \"default\"" : "missing");
        } else {
            char name[4200];
            snprintf(name, sizeof name, "%s:chat_template", path);
            if ((ct = chat_template_from_string(src, name))) take_specials(ct, cfg);
        }
        cJSON_Delete(cfg);
        free(dir);
        return ct;
    }
    size_t len;
    char *src = cispo_read_file(path, &len);
    if (!src) return NULL;
    chat_template_t *ct = chat_template_from_string(src, path);
    free(src);
    if (!ct) return NULL;
    // special tokens from tokenizer_config.json beside the template
    char *dir = cispo_strdup(path), *slash = strrchr(dir, '/'), cpath[4096];
    if (slash) *slash = 0;
    else strcpy(dir, ".");
    snprintf(cpath, sizeof cpath, "%s/tokenizer_config.json", dir);
    free(dir);
    if (file_exists(cpath)) {
        cJSON *cfg = read_json(cpath);
        if (!cfg) return chat_template_free(ct), NULL;
        take_specials(ct, cfg);
        cJSON_Delete(cfg);
    }
    return ct;
}

char *chat_template_render(const chat_template_t *ct, const cJSON *messages, const cJSON *tools, int add_generation_prompt,
                           const cJSON *extra) {
    cJSON *vars = cJSON_CreateObject();
    const char *names[] = {"bos_token", "eos_token", "pad_token", "unk_token"};
    const char *vals[] = {ct->bos_token, ct->eos_token, ct->pad_token, ct->unk_token};
    for (int i = 0; i < 4; i++)
        if (vals[i]) cJSON_AddStringToObject(vars, names[i], vals[i]);
    for (const cJSON *e = extra ? extra->child : NULL; e; e = e->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(vars, e->string);
        cJSON_AddItemToObject(vars, e->string, cJSON_Duplicate(e, 1));
    }
    cJSON_AddItemToObject(vars, "messages", messages ? cJSON_Duplicate(messages, 1) : cJSON_CreateArray());
    if (tools) cJSON_AddItemToObject(vars, "tools", cJSON_Duplicate(tools, 1));
    cJSON_AddBoolToObject(vars, "add_generation_prompt", add_generation_prompt);
    char *out = jinja_render(ct->tmpl, vars, NULL);
    cJSON_Delete(vars);
    return out;
}

void chat_template_free(chat_template_t *ct) {
    if (!ct) return;
    jinja_free(ct->tmpl);
    free(ct->source), free(ct->origin);
    free(ct->bos_token), free(ct->eos_token), free(ct->pad_token), free(ct->unk_token);
    free(ct);
}
