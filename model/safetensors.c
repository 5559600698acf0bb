// model/safetensors.c — safetensors reader (validating header parser, mmap, fp32 conversion) and
// fp32 writer (sorted names, space-padded header, temporary file + rename).
// defines: st_parse_header, st_header_free, st_dtype_name, st_open, st_close, st_find, st_read_f32,
//          st_write_f32
#include "model/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"

// ---- dtypes ----

static const struct {
    const char *name;
    unsigned bits;  // element size in bits (F4 and F6 are sub-byte)
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 32},         [ST_F16] = {"F16", 16},         [ST_BF16] = {"BF16", 16},
    [ST_F64] = {"F64", 64},         [ST_BOOL] = {"BOOL", 8},        [ST_U8] = {"U8", 8},
    [ST_I8] = {"I8", 8},            [ST_I16] = {"I16", 16},         [ST_U16] = {"U16", 16},
    [ST_I32] = {"I32", 32},         [ST_U32] = {"U32", 32},         [ST_I64] = {"I64", 64},
    [ST_U64] = {"U64", 64},         [ST_F8_E4M3] = {"F8_E4M3", 8},  [ST_F8_E5M2] = {"F8_E5M2", 8},
    [ST_F8_E8M0] = {"F8_E8M0", 8},  [ST_F4] = {"F4", 4},            [ST_F6_E2M3] = {"F6_E2M3", 6},
    [ST_F6_E3M2] = {"F6_E3M2", 6},
};

const char *st_dtype_name(st_dtype d) { return (unsigned)d < ST_DTYPE_COUNT ? dtype_info[d].name : "?"; }

static int dtype_from_name(const char *s) {
    for (int d = 0; d < ST_DTYPE_COUNT; d++)
        if (!strcmp(s, dtype_info[d].name)) return d;
    return -1;
}

// ---- error helpers ----

// A tensor name fit for a one-line message: at most 100 characters, control bytes and quotes escaped.
typedef struct {
    char s[128];
} safe_name_t;

static safe_name_t safe_name(const char *name) {
    safe_name_t out;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)name;
    for (; *p && o < 100; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\'' || *p == '\\') o += (size_t)snprintf(out.s + o, sizeof out.s - o, "\\x%02x", *p);
        else out.s[o++] = (char)*p;
    }
    if (*p) {
        memcpy(out.s + o, "...", 3);
        o += 3;
    }
    out.s[o] = 0;
    return out;
}

// ---- header parsing ----

// A JSON number that is an exact non-negative integer we can hold (safetensors offsets and dims).
static int json_u64(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double v = j->valuedouble;
    if (!(v >= 0) || v > 9007199254740992.0 || floor(v) != v) return -1;
    *out = (uint64_t)v;
    return 0;
}

static void format_dims(char *buf, size_t cap, const st_tensor_t *t) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < t->ndim && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static int parse_tensor(const cJSON *e, const char *origin, uint64_t data_len, st_tensor_t *t) {
    safe_name_t nm = safe_name(t->name);
    if (!cJSON_IsObject(e)) return cispo_fail("%s: tensor '%s': header entry is not a JSON object", origin, nm.s);

    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(jd)) return cispo_fail("%s: tensor '%s': missing or non-string \"dtype\"", origin, nm.s);
    int d = dtype_from_name(jd->valuestring);
    if (d < 0)
        return cispo_fail("%s: tensor '%s': unsupported dtype '%s' (not a safetensors dtype)", origin, nm.s,
                          safe_name(jd->valuestring).s);
    t->dtype = (st_dtype)d;

    const cJSON *js = cJSON_GetObjectItemCaseSensitive(e, "shape");
    if (!cJSON_IsArray(js)) return cispo_fail("%s: tensor '%s': missing or non-array \"shape\"", origin, nm.s);
    int nd = cJSON_GetArraySize(js);
    if (nd > ST_MAX_DIMS) return cispo_fail("%s: tensor '%s': shape has %d dims (at most %d)", origin, nm.s, nd, ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int k = 0;
    for (const cJSON *x = js->child; x; x = x->next, k++) {
        uint64_t v;
        if (json_u64(x, &v)) return cispo_fail("%s: tensor '%s': shape[%d] is not a non-negative integer", origin, nm.s, k);
        t->shape[k] = (int64_t)v;
        if (__builtin_mul_overflow(numel, v, &numel))
            return cispo_fail("%s: tensor '%s': shape overflows 64 bits", origin, nm.s);
    }
    t->numel = numel;

    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2)
        return cispo_fail("%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", origin, nm.s);
    if (json_u64(jo->child, &t->begin) || json_u64(jo->child->next, &t->end))
        return cispo_fail("%s: tensor '%s': data_offsets are not non-negative integers", origin, nm.s);
    if (t->end < t->begin)
        return cispo_fail("%s: tensor '%s': data_offsets [%llu,%llu] end before start", origin, nm.s,
                          (unsigned long long)t->begin, (unsigned long long)t->end);

    uint64_t bits;
    char dims[160];
    format_dims(dims, sizeof dims, t);
    if (__builtin_mul_overflow(numel, (uint64_t)dtype_info[d].bits, &bits) || bits % 8)
        return cispo_fail("%s: tensor '%s': shape %s of %s is not a whole number of bytes", origin, nm.s, dims,
                          dtype_info[d].name);
    if (bits / 8 != t->end - t->begin)
        return cispo_fail("%s: tensor '%s': data_offsets [%llu,%llu] hold %llu bytes but %s %s needs %llu", origin, nm.s,
                          (unsigned long long)t->begin, (unsigned long long)t->end,
                          (unsigned long long)(t->end - t->begin), dtype_info[d].name, dims, (unsigned long long)(bits / 8));
    if (t->end > data_len)
        return cispo_fail("%s: tensor '%s': data_offsets [%llu,%llu] past the end of the data section (%llu bytes; "
                          "truncated file?)",
                          origin, nm.s, (unsigned long long)t->begin, (unsigned long long)t->end,
                          (unsigned long long)data_len);
    return 0;
}

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor_t *const *)a)->name, (*(const st_tensor_t *const *)b)->name);
}
static int cmp_by_offset(const void *a, const void *b) {
    const st_tensor_t *x = *(const st_tensor_t *const *)a, *y = *(const st_tensor_t *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

// Names unique; offsets sorted must tile the data section exactly (the reference rejects gaps,
// overlaps and trailing bytes alike: each would mean the header and the data disagree).
static int check_layout(const st_header_t *h, const char *origin) {
    int n = h->n_tensors;
    if (n == 0) {
        if (h->data_len) return cispo_fail("%s: no tensors but %llu bytes of data", origin, (unsigned long long)h->data_len);
        return 0;
    }
    const st_tensor_t **order = cispo_malloc((size_t)n * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = &h->tensors[i];
    int rc = 0;
    qsort(order, (size_t)n, sizeof *order, cmp_by_name);
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name))
            rc = cispo_fail("%s: tensor '%s': name appears twice in the header", origin, safe_name(order[i]->name).s);
    if (!rc) qsort(order, (size_t)n, sizeof *order, cmp_by_offset);
    uint64_t pos = 0;
    for (int i = 0; i < n && !rc; i++) {
        const st_tensor_t *t = order[i];
        if (t->begin < pos)
            rc = cispo_fail("%s: tensor '%s': data_offsets [%llu,%llu] overlap tensor '%s' [%llu,%llu]", origin,
                            safe_name(t->name).s, (unsigned long long)t->begin, (unsigned long long)t->end,
                            safe_name(order[i - 1]->name).s, (unsigned long long)order[i - 1]->begin,
                            (unsigned long long)order[i - 1]->end);
        else if (t->begin > pos)
            rc = cispo_fail("%s: tensor '%s': data_offsets [%llu,%llu] leave a gap of %llu bytes before it", origin,
                            safe_name(t->name).s, (unsigned long long)t->begin, (unsigned long long)t->end,
                            (unsigned long long)(t->begin - pos));
        pos = t->end;
    }
    if (!rc && pos != h->data_len)
        rc = cispo_fail("%s: %llu bytes of data after the last tensor (header and data disagree)", origin,
                        (unsigned long long)(h->data_len - pos));
    free(order);
    return rc;
}

static int parse_json(const cJSON *root, const char *origin, st_header_t *h) {
    if (!cJSON_IsObject(root)) return cispo_fail("%s: safetensors header is not a JSON object", origin);
    int n = 0;
    for (const cJSON *e = root->child; e; e = e->next) n++;
    h->tensors = cispo_calloc((size_t)n, sizeof *h->tensors);
    for (const cJSON *e = root->child; e; e = e->next) {
        if (!strcmp(e->string, "__metadata__")) {
            if (!cJSON_IsObject(e)) return cispo_fail("%s: __metadata__ is not a JSON object", origin);
            for (const cJSON *m = e->child; m; m = m->next)
                if (!cJSON_IsString(m))
                    return cispo_fail("%s: __metadata__ key '%s': value is not a string", origin, safe_name(m->string).s);
            continue;
        }
        st_tensor_t *t = &h->tensors[h->n_tensors++];
        t->name = cispo_strdup(e->string);
        if (parse_tensor(e, origin, h->data_len, t)) return -1;
    }
    return check_layout(h, origin);
}

int st_parse_header(const uint8_t *buf, size_t len, const char *origin, st_header_t *h) {
    memset(h, 0, sizeof *h);
    if (len < 8)
        return cispo_fail("%s: file is %zu bytes, too short for a safetensors header (truncated or not safetensors)",
                          origin, len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];  // little-endian whatever the host
    if (n > ST_MAX_HEADER_BYTES)
        return cispo_fail("%s: header length %llu above the 100 MB limit (not a safetensors file?)", origin,
                          (unsigned long long)n);
    if (n > len - 8)
        return cispo_fail("%s: header length %llu past the end of the file (%zu bytes; truncated?)", origin,
                          (unsigned long long)n, len);
    if (n < 2 || buf[8] != '{')
        return cispo_fail("%s: header does not start with '{' (not a safetensors file?)", origin);
    h->header_len = n;
    h->data_start = 8 + n;
    h->data_len = len - 8 - n;

    const char *json = (const char *)buf + 8;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, (size_t)n, &end, 0);
    if (!root) {
        const char *ep = cJSON_GetErrorPtr();
        size_t at = (ep >= json && ep <= json + n) ? (size_t)(ep - json) : 0;
        return cispo_fail("%s: header is not valid JSON (error near byte %zu of the %llu-byte header)", origin, at,
                          (unsigned long long)n);
    }
    // The reference pads with spaces; anything else after the object is garbage.
    for (const char *p = end; p < json + n; p++)
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r') {
            cJSON_Delete(root);
            return cispo_fail("%s: header has bytes after the JSON object (byte %zu)", origin, (size_t)(p - json) + 8);
        }
    int rc = parse_json(root, origin, h);
    cJSON_Delete(root);
    if (rc) st_header_free(h);
    return rc;
}

void st_header_free(st_header_t *h) {
    for (int i = 0; i < h->n_tensors; i++) free(h->tensors[i].name);
    free(h->tensors);
    memset(h, 0, sizeof *h);
}

// ---- reading ----

int st_open(st_file_t *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cispo_fail("%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return cispo_fail("%s: not a regular file", path);
    }
    size_t len = (size_t)sb.st_size;
    const uint8_t *map = NULL;
    if (len) {
        void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            close(fd);
            return cispo_fail("%s: cannot map: %s", path, strerror(errno));
        }
        map = m;
    }
    close(fd);
    static const uint8_t empty[1];
    if (st_parse_header(map ? map : empty, len, path, &f->header)) {
        if (map) munmap((void *)map, len);
        return -1;
    }
    f->path = cispo_strdup(path);
    f->map = map;
    f->map_len = len;
    return 0;
}

void st_close(st_file_t *f) {
    if (f->map) munmap((void *)f->map, f->map_len);
    st_header_free(&f->header);
    free(f->path);
    memset(f, 0, sizeof *f);
}

int st_find(const st_file_t *f, const char *name) {
    for (int i = 0; i < f->header.n_tensors; i++)
        if (!strcmp(f->header.tensors[i].name, name)) return i;
    return -1;
}

// IEEE half -> float, subnormals and inf/nan included.
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) bits = sign | 0x7f800000u | (man << 13);
    else if (exp) bits = sign | ((exp + 112) << 23) | (man << 13);
    else if (!man) bits = sign;
    else {  // subnormal: normalise
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

int st_read_f32(const st_file_t *f, int i, float *dst) {
    CISPO_ASSERT(i >= 0 && i < f->header.n_tensors);
    const st_tensor_t *t = &f->header.tensors[i];
    const uint8_t *src = f->map + f->header.data_start + t->begin;  // maybe unaligned: memcpy per element
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F32: memcpy(dst, src, n * 4); break;
    case ST_F16:
        for (size_t k = 0; k < n; k++) {
            uint16_t h;
            memcpy(&h, src + 2 * k, 2);
            dst[k] = half_to_float(h);
        }
        break;
    case ST_BF16:
        for (size_t k = 0; k < n; k++) {
            uint16_t h;
            memcpy(&h, src + 2 * k, 2);
            uint32_t b = (uint32_t)h << 16;
            memcpy(&dst[k], &b, 4);
        }
        break;
    case ST_F64:
        for (size_t k = 0; k < n; k++) {
            double d;
            memcpy(&d, src + 8 * k, 8);
            dst[k] = (float)d;
        }
        break;
    default:
        return cispo_fail("%s: tensor '%s': unsupported dtype '%s' (cispo reads F32, F16, BF16 and F64 weights)", f->path,
                          safe_name(t->name).s, st_dtype_name(t->dtype));
    }
    return 0;
}

// ---- writing ----

static void buf_json_string(buf_t *b, const char *s) {
    buf_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') buf_printf(b, "\\%c", *p);
        else if (*p < 0x20) buf_printf(b, "\\u%04x", *p);
        else buf_putc(b, (char)*p);
    }
    buf_putc(b, '"');
}

static int cmp_write_by_name(const void *a, const void *b) {
    return strcmp((*(const st_write_tensor_t *const *)a)->name, (*(const st_write_tensor_t *const *)b)->name);
}

int st_write_f32(const char *path, const st_write_tensor_t *tensors, int n) {
    const st_write_tensor_t **order = cispo_malloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    for (int i = 0; i < n; i++) order[i] = &tensors[i];
    qsort(order, (size_t)n, sizeof *order, cmp_write_by_name);
    for (int i = 1; i < n; i++)
        if (!strcmp(order[i]->name, order[i - 1]->name)) {
            cispo_fail("%s: tensor '%s': given twice", path, safe_name(order[i]->name).s);
            free(order);
            return -1;
        }

    buf_t hdr = {0};
    buf_puts(&hdr, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        const st_write_tensor_t *t = order[i];
        CISPO_ASSERT(t->ndim >= 0 && t->ndim <= ST_MAX_DIMS);
        uint64_t numel = 1;
        buf_putc(&hdr, ',');
        buf_json_string(&hdr, t->name);
        buf_puts(&hdr, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            CISPO_ASSERT(t->shape[d] >= 0);
            numel *= (uint64_t)t->shape[d];
            buf_printf(&hdr, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        }
        buf_printf(&hdr, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)pos, (unsigned long long)(pos + 4 * numel));
        pos += 4 * numel;
    }
    buf_putc(&hdr, '}');
    while (hdr.n % 8) buf_putc(&hdr, ' ');  // 8-byte aligned data section, like the reference
    size_t len = hdr.n;

    size_t plen = strlen(path);
    char *tmp = cispo_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int rc = 0;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        rc = cispo_fail("%s: cannot create: %s", tmp, strerror(errno));
        goto done;
    }
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)((uint64_t)len >> (8 * i));
    int ok = fwrite(le, 1, 8, f) == 8 && fwrite(hdr.s, 1, len, f) == len;
    for (int i = 0; i < n && ok; i++) {
        size_t numel = 1;
        for (int d = 0; d < order[i]->ndim; d++) numel *= (size_t)order[i]->shape[d];
        ok = fwrite(order[i]->data, sizeof(float), numel, f) == numel;  // host is little-endian (x86-64, aarch64)
    }
    ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    if (fclose(f)) ok = 0;
    if (!ok) {
        unlink(tmp);
        rc = cispo_fail("%s: write failed: %s (disk full?)", tmp, strerror(err));
        goto done;
    }
    if (rename(tmp, path)) {
        err = errno;
        unlink(tmp);
        rc = cispo_fail("%s: cannot rename %s over it: %s", path, tmp, strerror(err));
    }
done:
    free(tmp);
    buf_free(&hdr);
    free(order);
    return rc;
}
