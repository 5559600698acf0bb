// kernels/backend.c — backend contexts and their memory (kernels/backend.h). The CPU backend is
// plain host memory; the CUDA backend's calls live in kernels/cuda/backend_cuda.cu.
// defines: dtype_size, dtype_name, backend_name, backend_available, backend_init, backend_release,
//          backend_host, backend_alloc, backend_free, backend_zero, backend_copy, backend_upload,
//          backend_download, backend_sync, backend_mem_info, backend_fill_f32, backend_read_f32, backend_ws_reserve,
//          backend_ws_take, backend_ws_room, backend_ws_mark, backend_ws_reset, f32_to_bf16, bf16_to_f32
#include "kernels/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/cuda/backend_cuda.h"

size_t dtype_size(int dtype) { return dtype == DTYPE_BF16 ? 2 : 4; }
const char *dtype_name(int dtype) { return dtype == DTYPE_BF16 ? "bf16" : dtype == DTYPE_F32 ? "fp32" : "?"; }
const char *backend_name(int kind) { return kind == BACKEND_CUDA ? "cuda" : kind == BACKEND_CPU ? "cpu" : "?"; }

uint16_t f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  // quiet NaN
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

int backend_available(int kind) {
    if (kind == BACKEND_CPU) return 1;
    if (kind == BACKEND_CUDA) return backend_cuda_device_count();
    return 0;
}

int backend_takes_head_dim(int kind, int head_dim) {
    if (kind == BACKEND_CPU) return head_dim > 0;
    if (kind == BACKEND_CUDA) return head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128;
    return 0;
}

int backend_open(backend_t *b, int want, int device, int head_dim, const char *what, const char **note) {
    static char why[160];
    const int have = backend_available(BACKEND_CUDA);
    if (note) *note = NULL;
    if (want < 0) {
        want = have > 0 && backend_takes_head_dim(BACKEND_CUDA, head_dim) ? BACKEND_CUDA : BACKEND_CPU;
        if (have > 0 && want == BACKEND_CPU && note) {
            snprintf(why, sizeof why, "the CUDA kernels take head_dim 16, 32, 64 or 128 and this model's is %d: running on the CPU",
                     head_dim);
            *note = why;
        }
    }
    if (want == BACKEND_CPU) return backend_init(b, BACKEND_CPU, 0, DTYPE_F32);
    if (have < 1) {
        char err[512];
        snprintf(err, sizeof err, "%s",
                 backend_init(b, BACKEND_CUDA, device, DTYPE_BF16) ? cispo_last_error() : "no GPU is visible");
        return cispo_fail("%s: cuda asked, but %s: use cpu or auto", what, err);
    }
    if (!backend_takes_head_dim(BACKEND_CUDA, head_dim))
        return cispo_fail("%s: cuda asked, but the CUDA kernels take head_dim 16, 32, 64 or 128 and this model's is %d: "
                          "use cpu (or a model with such heads)", what, head_dim);
    return backend_init(b, BACKEND_CUDA, device, DTYPE_BF16);
}

int backend_init(backend_t *b, int kind, int device, int act_dtype) {
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->device = device;
    b->act_dtype = act_dtype;
    if (kind == BACKEND_CPU) {
        if (act_dtype != DTYPE_F32)
            return cispo_fail("backend cpu: activation dtype %s is not supported (the CPU backend is the fp32 "
                              "reference)", dtype_name(act_dtype));
        return 0;
    }
    if (kind == BACKEND_CUDA) {
        if (act_dtype != DTYPE_BF16 && act_dtype != DTYPE_F32)
            return cispo_fail("backend cuda: unknown activation dtype %d", act_dtype);
        return backend_cuda_init(b);
    }
    return cispo_fail("unknown backend kind %d", kind);
}

void backend_release(backend_t *b) {
    if (b->ws) backend_free(b, b->ws);
    b->ws = NULL;
    b->ws_bytes = b->ws_used = 0;
    if (b->kind == BACKEND_CUDA) backend_cuda_release(b);
}

backend_t *backend_host(void) {
    static backend_t host = {.kind = BACKEND_CPU, .act_dtype = DTYPE_F32};
    return &host;
}

void *backend_alloc(backend_t *b, size_t bytes) {
    if (b->kind == BACKEND_CUDA) return backend_cuda_alloc(b, bytes);
    return cispo_calloc(bytes ? bytes : 1, 1);
}

void backend_free(backend_t *b, void *p) {
    if (!p) return;
    if (b->kind == BACKEND_CUDA) backend_cuda_free(b, p);
    else free(p);
}

void backend_zero(backend_t *b, void *p, size_t bytes) {
    if (!bytes) return;
    if (b->kind == BACKEND_CUDA) backend_cuda_memset(b, p, bytes);
    else memset(p, 0, bytes);
}

void backend_copy(backend_t *b, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    if (b->kind == BACKEND_CUDA) backend_cuda_copy(b, dst, src, bytes, BACKEND_CUDA_D2D);
    else memmove(dst, src, bytes);
}

void backend_upload(backend_t *b, void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    if (b->kind == BACKEND_CUDA) backend_cuda_copy(b, dst, host_src, bytes, BACKEND_CUDA_H2D);
    else memmove(dst, host_src, bytes);
}

void backend_download(backend_t *b, void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return;
    if (b->kind == BACKEND_CUDA) backend_cuda_copy(b, host_dst, src, bytes, BACKEND_CUDA_D2H);
    else memmove(host_dst, src, bytes);
}

void backend_mem_info(backend_t *b, size_t *free_bytes, size_t *total_bytes) {
    *free_bytes = *total_bytes = 0;
    if (b->kind == BACKEND_CUDA) backend_cuda_mem_info(b, free_bytes, total_bytes);
}

void backend_sync(backend_t *b) {
    if (b->kind == BACKEND_CUDA) backend_cuda_sync(b);
}

void backend_fill_f32(backend_t *b, void *dst, int dtype, const float *host, size_t n) {
    if (dtype == DTYPE_F32) {
        backend_upload(b, dst, host, n * sizeof(float));
        return;
    }
    uint16_t *tmp = cispo_malloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) tmp[i] = f32_to_bf16(host[i]);
    backend_upload(b, dst, tmp, n * sizeof(uint16_t));
    backend_sync(b);
    free(tmp);
}

void backend_read_f32(backend_t *b, float *host, const void *src, int dtype, size_t n) {
    if (dtype == DTYPE_F32) {
        backend_download(b, host, src, n * sizeof(float));
        return;
    }
    uint16_t *tmp = cispo_malloc(n * sizeof(uint16_t));
    backend_download(b, tmp, src, n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) host[i] = bf16_to_f32(tmp[i]);
    free(tmp);
}

#define WS_ALIGN 256

void backend_ws_reserve(backend_t *b, size_t bytes) {
    if (bytes <= b->ws_bytes) return;
    CISPO_ASSERT(b->ws_used == 0);  // never while an op holds scratch
    backend_sync(b);
    if (b->ws) backend_free(b, b->ws);
    b->ws = backend_alloc(b, bytes);
    b->ws_bytes = bytes;
}

void *backend_ws_take(backend_t *b, size_t bytes) {
    size_t at = (b->ws_used + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN;
    if (at + bytes > b->ws_bytes) {
        char what[160];
        snprintf(what, sizeof what, "workspace of %zu bytes, %zu more asked at %zu", b->ws_bytes, bytes, at);
        cispo_die(__FILE__, __LINE__, what, "the caller sizes the workspace (backend_ws_reserve) before the step");
    }
    b->ws_used = at + bytes;
    return b->ws + at;
}

size_t backend_ws_room(const backend_t *b, size_t want) {
    size_t at = (b->ws_used + WS_ALIGN - 1) / WS_ALIGN * WS_ALIGN, room = b->ws_bytes > at ? b->ws_bytes - at : 0;
    return want < room ? want : room;
}
size_t backend_ws_mark(const backend_t *b) { return b->ws_used; }
void backend_ws_reset(backend_t *b, size_t mark) { b->ws_used = mark; }
