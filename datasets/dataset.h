// datasets/dataset.h — a JSONL data set in memory: loading (every bad line reported as file:line),
// the held-out split by a hash of the id, shuffling by seed and sharding across ranks.
// defines: dataset_t, dataset_opts_t, dataset_split_t, dataset_load, dataset_free, dataset_is_heldout,
//          dataset_opts_default
#ifndef CISPO_DATASETS_DATASET_H
#define CISPO_DATASETS_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "datasets/record.h"

typedef enum { DATASET_SPLIT_ALL = 0, DATASET_SPLIT_TRAIN = 1, DATASET_SPLIT_HELDOUT = 2 } dataset_split_t;

typedef struct {
    dataset_split_t split;  // which records to keep (by dataset_is_heldout of their id)
    double heldout_frac;    // fraction of ids in the held-out split (default 0.1)
    int shuffle;            // 1: permute the kept records with seed (every rank gets the same order)
    uint64_t seed;
    int rank, world;        // keep records i with i % world == rank, after the shuffle
    record_fields_t fields; // keys of the records' fields (all NULL: the defaults and aliases of record.h)
} dataset_opts_t;

typedef struct {
    data_record_t *recs;  // [n]
    size_t n;
    size_t n_read;        // records in the file before the split and the shard
} dataset_t;

dataset_opts_t dataset_opts_default(void);  // all records, file order, one rank, heldout_frac 0.1

// Loads a JSONL file (blank lines skipped). A Parquet file (verl's format) is refused with the one-line
// conversion to JSONL (docs/rl.md "Data records"): no maintained C Parquet reader is packaged. The first bad line fails the whole load:
// -1 with datasets_last_error() = "file:line: key 'k': problem". Duplicate ids are an error too
// (the split and resumption rely on ids).
int dataset_load(const char *path, const dataset_opts_t *opts, dataset_t *out);
void dataset_free(dataset_t *d);

// 1 when the id falls in the held-out split: a 64-bit FNV-1a hash of the id, mixed, compared with
// frac. The same id is in the same split on every machine and in every run.
int dataset_is_heldout(const char *id, double frac);

#endif
