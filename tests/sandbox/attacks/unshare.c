// nested namespaces: unshare, setns, clone with new-namespace flags, mount
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>
int main(void) {
    if (unshare(CLONE_NEWUSER) == 0) puts("ESCAPED: unshare user");
    else perror("unshare user");
    if (unshare(CLONE_NEWNS) == 0) puts("ESCAPED: unshare mount");
    else perror("unshare mount");
    long r = syscall(SYS_clone, CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD, 0, 0, 0, 0);
    if (r == 0) _exit(0);
    if (r > 0) puts("ESCAPED: clone with new namespaces");
    else perror("clone newns");
    int fd = open("/proc/1/ns/mnt", O_RDONLY);
    if (fd >= 0 && setns(fd, 0) == 0) puts("ESCAPED: setns");
    else perror("setns");
    if (mount("none", "/work", "tmpfs", 0, NULL) == 0) puts("ESCAPED: mount");
    else perror("mount");
    if (syscall(SYS_pivot_root, "/work", "/work") == 0) puts("ESCAPED: pivot_root");
    else perror("pivot_root");
    puts("contained");
    return 0;
}
