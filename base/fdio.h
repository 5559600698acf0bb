// base/fdio.h — whole reads and writes: exact counts on file descriptors (pipes and sockets return
// short counts and EINTR), and a stdio stream read to its end.
// defines: fdio_read_all, fdio_read_upto, fdio_write_all, fdio_send_all, fdio_read_stream
//
// The descriptor functions report failure by return value and leave errno as the failing call set
// it (0 after an early end of file), so the caller names what it was doing; they allocate nothing
// and are safe in a forked child.
#ifndef CISPO_BASE_FDIO_H
#define CISPO_BASE_FDIO_H

#include <stddef.h>
#include <stdio.h>

// Reads exactly n bytes: 0, or -1 on end of file or an error (EINTR retried).
int fdio_read_all(int fd, void *buf, size_t n);
// Reads until n bytes or end of file: the bytes read; stops early at an error (EINTR retried).
size_t fdio_read_upto(int fd, void *buf, size_t n);
// Writes all n bytes with write(2): 0, or -1 on an error (EINTR retried).
int fdio_write_all(int fd, const void *buf, size_t n);
// The same on a socket with send(2) and MSG_NOSIGNAL: a closed peer gives -1 (EPIPE), not SIGPIPE.
int fdio_send_all(int fd, const void *buf, size_t n);

// Reads f to its end into a NUL-terminated buffer (the caller frees it; *len may be NULL);
// NULL + cispo_fail on a read error. For stdin and pipes; cispo_read_file opens a path.
char *fdio_read_stream(FILE *f, size_t *len);

#endif
