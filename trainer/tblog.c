// trainer/tblog.c — TensorBoard scalar event writer (TFRecord framing + Event protobuf by hand).
// Record: uint64 length | uint32 masked_crc(length) | data | uint32 masked_crc(data), little endian.
// Event { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
// Summary { repeated Value value = 1; }  Value { string tag = 1; float simple_value = 2; }
#include "trainer/tblog.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/common.h"

uint32_t tblog_crc32c(const void *data, size_t n) {
    static uint32_t table[256];
    static int ready = 0;
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = 1;
    }
    const uint8_t *p = data;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static uint32_t masked_crc(const void *data, size_t n) {
    uint32_t c = tblog_crc32c(data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        p[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

static int write_record(tblog_t *tb, const uint8_t *data, size_t n) {
    uint8_t head[12], tail[4];
    put_le(head, n, 8);
    put_le(head + 8, masked_crc(head, 8), 4);
    put_le(tail, masked_crc(data, n), 4);
    if (fwrite(head, 1, 12, tb->f) != 12 || fwrite(data, 1, n, tb->f) != n || fwrite(tail, 1, 4, tb->f) != 4)
        return cispo_fail("%s: write failed: %s", tb->path, strerror(errno));
    return 0;
}

static double wall_now(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + 1e-6 * (double)tv.tv_usec;
}

// Event header: wall_time and step.
static size_t put_event_head(uint8_t *p, int64_t step) {
    size_t n = 0;
    double wt = wall_now();
    uint64_t bits;
    memcpy(&bits, &wt, 8);
    p[n++] = 0x09;  // field 1, fixed64
    put_le(p + n, bits, 8);
    n += 8;
    p[n++] = 0x10;  // field 2, varint
    n += put_varint(p + n, (uint64_t)step);
    return n;
}

int tblog_open(tblog_t *tb, const char *dir) {
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(tb->path, sizeof tb->path, "%s/events.out.tfevents.%ld.%s", dir, (long)time(NULL), host);
    tb->f = fopen(tb->path, "wb");
    if (!tb->f) return cispo_fail("%s: cannot create: %s", tb->path, strerror(errno));
    uint8_t buf[64];
    size_t n = put_event_head(buf, 0);
    const char *ver = "brain.Event:2";
    buf[n++] = 0x1a;  // field 3, length-delimited
    n += put_varint(buf + n, strlen(ver));
    memcpy(buf + n, ver, strlen(ver));
    n += strlen(ver);
    return write_record(tb, buf, n);
}

int tblog_scalar(tblog_t *tb, const char *tag, int64_t step, double value) {
    if (!tb->f) return 0;
    size_t tl = strlen(tag);
    if (tl > 200) tl = 200;
    uint8_t val[256], sum[272], ev[320];
    size_t nv = 0, ns = 0, ne;
    val[nv++] = 0x0a;  // Value.tag
    nv += put_varint(val + nv, tl);
    memcpy(val + nv, tag, tl);
    nv += tl;
    val[nv++] = 0x15;  // Value.simple_value, fixed32
    float fv = (float)value;
    uint32_t fb;
    memcpy(&fb, &fv, 4);
    put_le(val + nv, fb, 4);
    nv += 4;
    sum[ns++] = 0x0a;  // Summary.value
    ns += put_varint(sum + ns, nv);
    memcpy(sum + ns, val, nv);
    ns += nv;
    ne = put_event_head(ev, step);
    ev[ne++] = 0x2a;  // Event.summary
    ne += put_varint(ev + ne, ns);
    memcpy(ev + ne, sum, ns);
    ne += ns;
    return write_record(tb, ev, ne);
}

void tblog_flush(tblog_t *tb) {
    if (tb->f) fflush(tb->f);
}

void tblog_close(tblog_t *tb) {
    if (tb->f) fclose(tb->f);
    tb->f = NULL;
}
