// tests/fuzz/fuzz_safetensors.c — libFuzzer target for the safetensors header parser
// (st_parse_header) and the fp32 conversion of whatever it accepts.
//   CC=clang-14 cmake -S . -B build-fuzz -DCISPO_FUZZ=ON -DCISPO_CUDA=OFF && cmake --build build-fuzz --target fuzz_safetensors
//   build-fuzz/tests/fuzz_safetensors -dict=tests/fuzz/safetensors.dict -max_total_time=600 \
//       /tmp/corpus tests/fuzz/corpus_safetensors
// Invariants checked on every input: a rejection leaves one non-empty line of error; an acceptance
// gives tensors inside the data section, tiling it exactly, each readable (F32/F16/BF16/F64) or
// refused with an error (other dtypes).
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_file_t f;
    memset(&f, 0, sizeof f);
    cispo_clear_error();
    if (st_parse_header(data, size, "fuzz.safetensors", &f.header)) {
        const char *msg = cispo_last_error();
        CISPO_ASSERT(msg[0] != 0 && strchr(msg, '\n') == NULL);
        CISPO_ASSERT(f.header.tensors == NULL && f.header.n_tensors == 0);
        return 0;
    }
    CISPO_ASSERT(f.header.data_start + f.header.data_len == size);
    uint64_t covered = 0;
    f.path = "fuzz.safetensors";
    f.map = data;
    f.map_len = size;
    for (int i = 0; i < f.header.n_tensors; i++) {
        const st_tensor_t *t = &f.header.tensors[i];
        CISPO_ASSERT(t->begin <= t->end && t->end <= f.header.data_len);
        covered += t->end - t->begin;
        float *out = cispo_malloc((size_t)t->numel * sizeof(float));
        int rc = st_read_f32(&f, i, out);
        int readable = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64;
        CISPO_ASSERT(readable ? rc == 0 : rc == -1);
        free(out);
    }
    CISPO_ASSERT(covered == f.header.data_len);
    st_header_free(&f.header);
    return 0;
}
