// ptrace: attach to the init, trace ourselves, read another process's memory
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void) {
    if (ptrace(PTRACE_ATTACH, 1, 0, 0) == 0) puts("ESCAPED: attached to pid 1");
    else perror("attach 1");
    if (ptrace(PTRACE_TRACEME, 0, 0, 0) == 0) puts("ESCAPED: traceme");
    else perror("traceme");
    char buf[16];
    struct iovec l = {buf, sizeof buf}, r = {(void *)0x400000, sizeof buf};
    if (syscall(SYS_process_vm_readv, 1, &l, 1, &r, 1, 0) > 0) puts("ESCAPED: read pid 1 memory");
    else perror("process_vm_readv");
    puts("contained");
    return 0;
}
