// kernel attack surface: keyctl, bpf, perf_event_open, modules, reboot, io_uring, userfaultfd,
// and changing user
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/reboot.h>
int main(void) {
    struct { long nr; const char *name; } calls[] = {
        {SYS_keyctl, "keyctl"}, {SYS_add_key, "add_key"}, {SYS_bpf, "bpf"}, {SYS_perf_event_open, "perf_event_open"},
        {SYS_init_module, "init_module"}, {SYS_finit_module, "finit_module"}, {SYS_delete_module, "delete_module"},
        {SYS_io_uring_setup, "io_uring_setup"}, {SYS_userfaultfd, "userfaultfd"}, {SYS_kexec_load, "kexec_load"},
        {SYS_syslog, "syslog"}, {SYS_sethostname, "sethostname"}};
    int escaped = 0;
    for (unsigned i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        long r = syscall(calls[i].nr, 0, 0, 0, 0, 0, 0);
        if (r >= 0 && calls[i].nr != SYS_syslog) printf("ESCAPED: %s returned %ld\n", calls[i].name, r), escaped = 1;
        else printf("refused %s\n", calls[i].name);
    }
    // changing to another user needs CAP_SETUID, which no sandboxed process has
    if (setuid(12345) == 0 || setgid(12345) == 0) puts("ESCAPED: changed uid/gid"), escaped = 1;
    else puts("refused setuid/setgid");
    if (syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_CAD_OFF, 0) == 0) puts("ESCAPED: reboot");
    return escaped;
}
