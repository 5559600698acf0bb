// model/safetensors.h — the safetensors file format (https://github.com/huggingface/safetensors):
// an 8-byte little-endian header length N, N bytes of JSON header
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {..}},
// then the data section; offsets are relative to the start of the data section.
// defines: st_dtype, st_tensor_t, st_header_t, st_parse_header, st_header_free, st_file_t, st_open,
//          st_close, st_find, st_read_f32, st_write_tensor_t, st_write_f32, st_dtype_name
//
// Reading validates everything the reference implementation does (header length inside the file,
// JSON well formed, every tensor's dtype/shape/offsets, offsets contiguous in order with no overlap,
// gap or trailing bytes, no duplicate names) and converts F32, F16, BF16 and F64 to fp32.
// Every error is one line: "<file>: tensor '<name>': <problem>" (or "<file>: <problem>").
// Writing produces fp32 tensors with names sorted, the header padded with spaces to a multiple of
// 8 bytes (as the reference writer does), into "<path>.tmp" renamed over <path> when complete.
#ifndef CISPO_MODEL_SAFETENSORS_H
#define CISPO_MODEL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_DIMS 8
// The reference implementation refuses headers above 100 MB; so do we.
#define ST_MAX_HEADER_BYTES 100000000ull

// Every dtype the format defines; only the floating ones up to F64 are readable as fp32.
typedef enum {
    ST_F32 = 0, ST_F16, ST_BF16, ST_F64,                    // readable
    ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_I32, ST_U32,  // known, not convertible to fp32 here
    ST_I64, ST_U64, ST_F8_E4M3, ST_F8_E5M2, ST_F8_E8M0, ST_F4, ST_F6_E2M3, ST_F6_E3M2,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t numel;
    uint64_t begin, end;  // byte offsets into the data section, end exclusive
} st_tensor_t;

typedef struct {
    st_tensor_t *tensors;  // in header order
    int n_tensors;
    uint64_t header_len;   // N
    uint64_t data_start;   // 8 + N: where the data section starts in the file
    uint64_t data_len;     // bytes of the data section
} st_header_t;

// Parses and validates a whole safetensors image buf[0..len) (the 8-byte length, the JSON header
// and the data section, which is only measured, never read). origin names the file in errors.
// Returns 0, or -1 with cispo_last_error() set; on error *h is left empty (nothing to free).
int st_parse_header(const uint8_t *buf, size_t len, const char *origin, st_header_t *h);
void st_header_free(st_header_t *h);
const char *st_dtype_name(st_dtype d);

// An open, memory-mapped file.
typedef struct {
    char *path;
    const uint8_t *map;  // the whole file
    size_t map_len;
    st_header_t header;
} st_file_t;

int st_open(st_file_t *f, const char *path);
void st_close(st_file_t *f);
// Index of the tensor with this name, or -1.
int st_find(const st_file_t *f, const char *name);
// Converts tensor i to fp32 into dst[0..numel). Fails for dtypes other than F32/F16/BF16/F64.
int st_read_f32(const st_file_t *f, int i, float *dst);

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    const float *data;  // numel floats
} st_write_tensor_t;

// Writes the tensors as F32 (names must be unique) with __metadata__ {"format": "pt"}.
int st_write_f32(const char *path, const st_write_tensor_t *tensors, int n);

#endif
