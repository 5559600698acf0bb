// trainer/tblog.h — TensorBoard event files (scalars), written directly: TFRecord framing with
// masked CRC-32C around hand-encoded Event protocol buffers. No TensorFlow needed to write them;
// TensorBoard (and its event reader) reads them.
// defines: tblog_t, tblog_open, tblog_scalar, tblog_flush, tblog_close
#ifndef CISPO_TRAINER_TBLOG_H
#define CISPO_TRAINER_TBLOG_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
    FILE *f;
    char path[1024];
} tblog_t;

// Creates dir/events.out.tfevents.<seconds>.<host> and writes the file-version record.
int tblog_open(tblog_t *tb, const char *dir);
// One scalar summary event (tag, step, value; wall time = now).
int tblog_scalar(tblog_t *tb, const char *tag, int64_t step, double value);
void tblog_flush(tblog_t *tb);
void tblog_close(tblog_t *tb);
// CRC-32C (Castagnoli) of a buffer, exposed for tests.
uint32_t tblog_crc32c(const void *data, size_t n);

#endif
