// Issue 18.3: socket buffers queued on the jail's own loopback are kernel memory of the jail:
// unread data in both directions of 30 connections (about 20 MiB each by default) must be
// charged to its cgroup and held to its limit (192 MiB for a 64 MiB run).
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
static long fill(int fd) {
    static char buf[1 << 16];
    long n = 0;
    for (;;) {
        ssize_t w = write(fd, buf, sizeof buf);
        if (w <= 0) return n;
        n += w;
    }
}
int main(void) {
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 64) || getsockname(l, (struct sockaddr *)&a, &al)) return 1;
    long total = 0;
    for (int i = 0; i < 30; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) break;
        int s = accept(l, NULL, NULL);
        if (s < 0) break;
        fcntl(c, F_SETFL, O_NONBLOCK);
        fcntl(s, F_SETFL, O_NONBLOCK);
        total += fill(c) + fill(s);
    }
    printf("%ld MiB queued\n", total >> 20);
    if (total > (192L << 20)) printf("ESCAPED: %ld MiB of socket buffers past the jail's memory limit\n", total >> 20);
    return 0;
}
