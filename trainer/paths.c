// trainer/paths.c — config-relative paths, the source tree or install root, model presets (paths.h).
#include "trainer/paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/common.h"

static int exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static int is_bare(const char *v) { return !strchr(v, '/') && !strchr(v, '.'); }

// "a/./b", "a//b" and "a/x/../b" as "a/b", in place (the file need not exist, so no realpath).
static void normalise(char *p) {
    char *out = p, *in = p;
    while (*in) {
        if (in[0] == '/' && in[1] == '/') in++;
        else if (in[0] == '/' && in[1] == '.' && (in[2] == '/' || !in[2])) in += 2;
        else if (in[0] == '/' && in[1] == '.' && in[2] == '.' && (in[3] == '/' || !in[3]) && out > p) {
            while (out > p && *--out != '/') {
            }
            in += 3;
        } else *out++ = *in++;
    }
    *out = 0;
    if (!p[0]) p[0] = '/', p[1] = 0;
}

int paths_resolve(const char *value, const char *base_dir, char *out, size_t cap) {
    char cwd[PATH_MAX], joined[2 * PATH_MAX + 2];
    if (!base_dir) base_dir = getcwd(cwd, sizeof cwd) ? cwd : ".";
    if (!value[0] || value[0] == '/') goto keep;
    const char *v = value;
    while (v[0] == '.' && v[1] == '/') v += 2;  // "./x" is "x"
    snprintf(joined, sizeof joined, "%s/%s", base_dir, v);
    if (is_bare(value) && !exists(joined)) goto keep;  // a name: arithmetic, auto, a preset
    char real[PATH_MAX];
    const char *r = joined;
    if (realpath(joined, real)) r = real;
    else normalise(joined);
    if (strlen(r) >= cap) return cispo_fail("path %s is longer than %zu characters", r, cap - 1);
    snprintf(out, cap, "%s", r);
    return 0;
keep:
    if (strlen(value) >= cap) return cispo_fail("path %s is longer than %zu characters", value, cap - 1);
    memmove(out, value, strlen(value) + 1);
    return 0;
}

static int has_configs(const char *dir) {
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/configs/demo.yaml", dir);
    return access(p, R_OK) == 0;
}

int paths_find_root(char *root, size_t cap) {
    const char *env = getenv("CISPO_SRC");
    char found[PATH_MAX] = "";
    if (env && env[0] && has_configs(env)) snprintf(found, sizeof found, "%s", env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (!found[0] && n > 0) {
        exe[n] = 0;
        for (int up = 0; up < 3 && !found[0]; up++) {
            char *slash = strrchr(exe, '/');
            if (!slash) break;
            *slash = 0;
            char share[PATH_MAX];
            snprintf(share, sizeof share, "%.4000s/share/cispo", exe);
            if (has_configs(exe)) snprintf(found, sizeof found, "%.4000s", exe);
            else if (has_configs(share)) snprintf(found, sizeof found, "%.4000s", share);
        }
    }
    if (!found[0] && has_configs(".")) snprintf(found, sizeof found, ".");
    if (!found[0])
        return cispo_fail("configs/demo.yaml not found beside the cispo binary (the source tree or PREFIX/share/cispo "
                          "of `cmake --install`): set CISPO_SRC to the source tree");
    char real[PATH_MAX];
    if (realpath(found, real)) snprintf(found, sizeof found, "%s", real);
    if (strlen(found) >= cap) return cispo_fail("path %s is too long", found);
    snprintf(root, cap, "%s", found);
    return 0;
}

void paths_model_spec(const char *spec, char *out, size_t cap) {
    char root[PATH_MAX], preset[PATH_MAX + 300];
    if (is_bare(spec) && spec[0] && !exists(spec) && strlen(spec) < 200 && !paths_find_root(root, sizeof root)) {
        snprintf(preset, sizeof preset, "%s/configs/models/%s.yaml", root, spec);
        if (exists(preset) && strlen(preset) < cap) {
            snprintf(out, cap, "%s", preset);
            return;
        }
    }
    if (out != spec) snprintf(out, cap, "%s", spec);
}

int paths_is_preset(const char *spec) {
    size_t n = strlen(spec);
    struct stat st;
    if (!stat(spec, &st) && S_ISDIR(st.st_mode)) return 0;
    return (n >= 5 && (!strcmp(spec + n - 5, ".yaml") || !strcmp(spec + n - 5, ".json"))) ||
           (n >= 4 && !strcmp(spec + n - 4, ".yml"));
}
