// tests/gpu/widen.h — the HF parity fixtures' heads are 4 to 16 wide and their hidden widths 16 to 32, where the CUDA
// kernels take heads of 16, 32, 64 or 128 (kernels/backend.h backend_takes_head_dim) and rows of whole 16-byte
// vectors: a GPU test runs each fixture's configuration (flavour, rope
// type and scaling, window, tying, layer kinds, norms, vocabulary) with heads widened to 64, hidden and
// expert widths rounded up to multiples of 64 as real models have them, and random weights, against the
// CPU reference of the same widened model. rotary_dim is kept (a partial rotary of the wider head), so
// per-pair rope factors (longrope) still fit. CISPO_WIDEN_HEADS_ONLY=1 keeps the fixture's hidden and
// expert widths (20, 24: narrower than one 16-byte vector of bf16 per 8 elements).
// defines: test_widen_heads
#ifndef CISPO_TESTS_GPU_WIDEN_H
#define CISPO_TESTS_GPU_WIDEN_H

#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "model/params.h"

// Widens cfg's heads to 64 when CUDA cannot take them or its hidden and expert widths are not multiples of 64 (the
// fixtures' 20 and 12 are narrower than the kernels' 16-byte rows); with params (the fixture's weights) replaced by
// random weights (scaled by 3: peaked, varied distributions) drawn from seed. Returns 1 when widened,
// 0 when the fixture runs as it is, -1 (+ message) when the widened config is invalid.
static inline int test_widen_heads(model_config_t *cfg, param_table_t *table, float **params, uint64_t seed) {
    if (backend_takes_head_dim(BACKEND_CUDA, cfg->head_dim) && cfg->hidden_size % 64 == 0 &&
        cfg->intermediate_size % 64 == 0)
        return 0;
    cfg->head_dim = 64;
    const char *only = getenv("CISPO_WIDEN_HEADS_ONLY");
    if (!only || strcmp(only, "1")) {
        cfg->hidden_size = (cfg->hidden_size + 63) / 64 * 64;
        cfg->intermediate_size = (cfg->intermediate_size + 63) / 64 * 64;
    }
    if (model_config_validate(cfg, "widened")) return -1;
    param_table_free(table);
    param_table_build(table, cfg);
    free(*params);
    *params = cispo_malloc(table->n_floats * sizeof(float));
    param_init_hf(*params, table, cfg, seed);
    for (size_t i = 0; i < table->n_floats; i++) (*params)[i] *= 3.0f;
    return 1;
}

#endif
