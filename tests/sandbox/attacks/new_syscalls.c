// Issue 18.12: syscalls newer than the reviewed table (statmount, listmount, mseal,
// open_tree_attr, ...) must not reach the kernel, and neither MPTCP nor UDP-Lite sockets open.
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    static const int nrs[] = {457, 458, 459, 461, 462, 463, 464, 467, 468, 469, 470, 480, 500, 1000};
    for (size_t i = 0; i < sizeof nrs / sizeof nrs[0]; i++) {
        errno = 0;
        long r = syscall(nrs[i], 0, 0, 0, 0, 0, 0);
        if (r >= 0 || (errno != ENOSYS && errno != EPERM)) printf("ESCAPED: syscall %d reached the kernel (%ld, %s)\n", nrs[i], r, strerror(errno));
    }
    int s = socket(AF_INET, SOCK_STREAM, 262);  // IPPROTO_MPTCP
    if (s >= 0) printf("ESCAPED: an MPTCP socket opened\n");
    s = socket(AF_INET6, SOCK_STREAM, 262);
    if (s >= 0) printf("ESCAPED: an MPTCP v6 socket opened\n");
    s = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE);
    if (s >= 0) printf("ESCAPED: a UDP-Lite socket opened\n");
    s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
    if (s < 0) printf("a TCP socket should open\n");
    printf("done\n");
    return 0;
}
