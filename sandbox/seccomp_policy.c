// sandbox/seccomp_policy.c — the syscall filter of sandboxed programs, built once with libseccomp
// and exported as a BPF program, so each run only pays for one prctl(PR_SET_SECCOMP).
// defines: jail_seccomp_prog
//
// A deny list over a default allow (the programs are ordinary compilers and interpreters): every
// call that reaches kernel attack surface or another process, or escapes the namespaces, fails with
// EPERM. The list was reviewed against the syscall table up to futex_requeue (456); every number
// above it, known or not to this libseccomp, fails with ENOSYS (libc falls back, as on an older
// kernel), so a new kernel's new calls (statmount, listmount, mseal, open_tree_attr, ...) never
// reach the kernel unreviewed. Foreign architectures (i386/x32 entry points) kill the process.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox/jail_internal.h"

static struct sock_fprog prog;
static char prog_err[256];
static pthread_once_t prog_once = PTHREAD_ONCE_INIT;

// Calls with no legitimate use in a judged program.
static const char *const denied[] = {
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
    "init_module", "finit_module", "delete_module", "reboot", "kexec_load", "kexec_file_load",
    "swapon", "swapoff", "acct", "syslog", "quotactl", "quotactl_fd", "open_by_handle_at",
    "name_to_handle_at", "lookup_dcookie", "vhangup", "uselib", "nfsservctl", "iopl", "ioperm",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "fanotify_init", "io_uring_setup", "io_uring_enter", "io_uring_register",
    // legacy interfaces with a history of kernel bugs and no use in a judged program
    "modify_ldt", "vm86", "vm86old", "ustat", "sysfs", "_sysctl", "process_madvise", "move_pages", "migrate_pages",
    // anonymous shared memory outside RLIMIT_AS/tmpfs quotas (memory bombs)
    "memfd_create", "memfd_secret",
    // namespace-sharing and cgroup-escaping forks go through clone flags (below); clone3 cannot be
    // inspected (its flags live in memory), so it reports ENOSYS and libc falls back to clone
};

// Linux AIO: its events come from one host-wide pool (fs.aio-max-nr) that a jail could exhaust;
// ENOSYS, as on a kernel without it (libc's POSIX AIO uses threads, not these)
static const char *const absent[] = {"io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents"};

// The syscall table as reviewed (the generic numbering every architecture shares from 424 on);
// its last calls (cachestat, fchmodat2, map_shadow_stack, futex_wake/wait/requeue: glibc uses or
// probes them) stay allowed.
#define REVIEWED_LAST 456
#define UNREVIEWED_END 1024  // numbers past the table (up to here) are refused as well

static int build(char *err, size_t n) {
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx) return snprintf(err, n, "seccomp_init failed"), -1;
    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    // a binary search over syscall numbers instead of a linear scan: every syscall of the program
    // runs the filter (libseccomp >= 2.5; older ones keep the linear form)
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    int rc = 0;
    for (size_t i = 0; i < sizeof denied / sizeof denied[0] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture / libseccomp version
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
    }
    for (size_t i = 0; i < sizeof absent / sizeof absent[0] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(absent[i]);
        if (nr != __NR_SCMP_ERROR) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    }
    for (int nr = REVIEWED_LAST + 1; nr < UNREVIEWED_END && rc == 0; nr++) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), nr, 0);
    int clone3 = seccomp_syscall_resolve_name("clone3");
    if (rc == 0 && clone3 != __NR_SCMP_ERROR) rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), clone3, 0);
    const unsigned long ns_flags[] = {CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                      CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_NEWTIME};
    for (size_t i = 0; i < sizeof ns_flags / sizeof ns_flags[0] && rc == 0; i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
    // sockets: AF_UNIX (1), AF_INET (2), AF_INET6 (10) only — the network namespace has just
    // loopback; netlink, packet, vsock, etc. are refused
    for (int fam = 0; fam < 10 && rc == 0; fam++)
        if (fam != AF_UNIX && fam != AF_INET)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, fam, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GT, AF_INET6, 0));
    // and of those, the default protocol, TCP and UDP only: MPTCP, UDP-Lite, SCTP, ICMP... are
    // kernel surface no judged program needs
    const int fams[] = {AF_INET, AF_INET6};
    for (int f = 0; f < 2 && rc == 0; f++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[f], 0),
                              SCMP_A2(SCMP_CMP_GT, IPPROTO_UDP, 0));
        for (int p = 1; p < IPPROTO_UDP && rc == 0; p++)
            if (p != IPPROTO_TCP)
                rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)fams[f], 0),
                                      SCMP_A2(SCMP_CMP_EQ, (scmp_datum_t)p, 0));
    }
    // TIOCSTI pushes input into a terminal: no terminal here, but refuse it anyway
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, 0x5412));
    if (rc != 0) {
        jail_fmt(err, n, "libseccomp rule failed: %s", strerror(-rc));
        seccomp_release(ctx);
        return -1;
    }
    // export the BPF through a pipe-backed temporary file (libseccomp 2.5 exports to an fd only)
    FILE *tmp = tmpfile();
    if (!tmp) return snprintf(err, n, "tmpfile for the seccomp export: %s", strerror(errno)), seccomp_release(ctx), -1;
    rc = seccomp_export_bpf(ctx, fileno(tmp));
    seccomp_release(ctx);
    if (rc != 0) return snprintf(err, n, "seccomp_export_bpf failed: %s", strerror(-rc)), fclose(tmp), -1;
    long len = lseek(fileno(tmp), 0, SEEK_END);
    if (len <= 0 || len % (long)sizeof(struct sock_filter)) return snprintf(err, n, "seccomp export has a bad size"), fclose(tmp), -1;
    struct sock_filter *f = malloc((size_t)len);
    if (!f || pread(fileno(tmp), f, (size_t)len, 0) != len) {
        free(f);
        fclose(tmp);
        return snprintf(err, n, "reading the seccomp export failed"), -1;
    }
    fclose(tmp);
    prog.len = (unsigned short)(len / (long)sizeof(struct sock_filter));
    prog.filter = f;
    return 0;
}

static void build_once(void) {
    if (build(prog_err, sizeof prog_err) != 0) prog.filter = NULL;
}

const struct sock_fprog *jail_seccomp_prog(char *err, size_t n) {
    pthread_once(&prog_once, build_once);
    if (!prog.filter) {
        jail_fmt(err, n, "%s", prog_err);
        return NULL;
    }
    return &prog;
}
