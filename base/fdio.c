// base/fdio.c — whole reads and writes on descriptors and streams (fdio.h).
#include "base/fdio.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/common.h"

int fdio_read_all(int fd, void *buf, size_t n) {
    char *p = buf;
    while (n) {
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = 0;  // end of file before n bytes
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

size_t fdio_read_upto(int fd, void *buf, size_t n) {
    char *p = buf;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, p + got, n - got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    return got;
}

// write(2) or send(2, MSG_NOSIGNAL) until all n bytes are out.
static int put_all(int fd, const void *buf, size_t n, int sock) {
    const char *p = buf;
    while (n) {
        ssize_t k = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int fdio_write_all(int fd, const void *buf, size_t n) { return put_all(fd, buf, n, 0); }
int fdio_send_all(int fd, const void *buf, size_t n) { return put_all(fd, buf, n, 1); }

char *fdio_read_stream(FILE *f, size_t *len) {
    buf_t b = {0};
    for (;;) {
        buf_reserve(&b, 1 << 16);
        size_t got = fread(b.s + b.n, 1, b.cap - b.n - 1, f);
        b.n += got;
        if (got == 0) break;
    }
    b.s[b.n] = 0;
    if (ferror(f)) {
        buf_free(&b);
        cispo_fail("reading the input: %s", strerror(errno));
        return NULL;
    }
    return buf_take(&b, len);
}
