// kernels/cpu/scratch.c — the CPU reference ops' workspace: one arena per thread that grows to the
// largest request seen and is then reused, so a steady-state op allocates nothing per call.
// defines: cpu_scratch_t, cpu_scratch_begin, cpu_scratch_take, cpu_scratch_end
//
// Blocks are chained while an op holds scratch (a growing block never moves live pointers); when the
// outermost holder gives its scratch back, a chain of several blocks is replaced by one block of
// their total size for the next call.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/cpu/ops_cpu.h"

typedef struct cpu_block {
    struct cpu_block *prev;
    size_t cap, used;
    max_align_t data[];
} cpu_block;

static _Thread_local cpu_block *top;
static _Thread_local size_t total_cap;
static _Thread_local int depth;

// A thread's blocks are freed when it exits (a pthread key's destructor; its value is the top block,
// kept current below), so threads that run CPU ops and end leak nothing.
static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;

static void arena_free(void *p) {
    cpu_block *b = p;
    while (b) {
        cpu_block *prev = b->prev;
        free(b);
        b = prev;
    }
}

static void arena_key_init(void) { CISPO_ASSERT(pthread_key_create(&arena_key, arena_free) == 0); }

static void arena_remember(void) {
    pthread_once(&arena_once, arena_key_init);
    pthread_setspecific(arena_key, top);
}

cpu_scratch_t cpu_scratch_begin(void) {
    cpu_scratch_t m = {top, top ? top->used : 0};
    depth++;
    return m;
}

void *cpu_scratch_take(size_t bytes) {
    bytes = (bytes + 63) / 64 * 64;
    if (!top || top->used + bytes > top->cap) {
        size_t cap = bytes > total_cap ? bytes : total_cap;
        if (cap < ((size_t)1 << 16)) cap = (size_t)1 << 16;
        cpu_block *b = cispo_malloc(sizeof(cpu_block) + cap);
        b->prev = top;
        b->cap = cap;
        b->used = 0;
        top = b;
        total_cap += cap;
        arena_remember();
    }
    void *p = (char *)top->data + top->used;
    top->used += bytes;
    return p;
}

void cpu_scratch_end(cpu_scratch_t m) {
    CISPO_ASSERT(depth > 0);
    depth--;
    if (depth == 0) {  // outermost: all is free; a chain of blocks becomes one of their total size
        if (top && top->prev) {
            size_t cap = total_cap;
            while (top) {
                cpu_block *b = top;
                top = b->prev;
                free(b);
            }
            top = cispo_malloc(sizeof(cpu_block) + cap);
            top->prev = NULL;
            top->cap = cap;
            arena_remember();
        }
        if (top) top->used = 0;
        return;
    }
    while (top != (cpu_block *)m.block) {
        cpu_block *b = top;
        top = b->prev;
        total_cap -= b->cap;
        free(b);
    }
    arena_remember();
    if (top) top->used = m.used;
}
