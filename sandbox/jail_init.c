// sandbox/jail_init.c — the init process of a jail (pid 1 of its PID namespace): builds the root
// filesystem, then runs each step as a fresh confined child, enforces the step's wall-clock and
// output limits, kills and reaps everything left between steps, copies requested files back, and
// reports each step to the caller over the message pipe.
// defines: jail_init_main
//
// Why an init of our own rather than exec'ing the program as pid 1: pid 1 of a namespace ignores
// signals it has no handler for (a program's kill(getpid(), SIGSEGV) would misbehave), orphans
// would need reaping by untrusted code, and several steps (compile, then each test) share one
// /work. Being pid 1, kill(-1, SIGKILL) reaches every other process of the jail and nothing else.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/securebits.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/fdio.h"
#include "sandbox/jail_internal.h"

#define SANDBOX_UID 1000  // the user programs run as, inside the namespace
#define NEWROOT "/tmp"
#define UNCONFINED_UID 65534  // "nobody": who runs programs without a jail when we are root    // staging mount point of the new root, in our private mount namespace

static int ctl_fd = -1;
static int pristine_fd = -1;  // a detached tmpfs holding /work as it was before the first fresh_work step

double jail_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void send_msg(uint32_t type, uint32_t step, const void *a, size_t na, const void *b, size_t nb,
                     const void *c, size_t nc) {
    jail_msg_t h = {type, step, (uint64_t)(na + nb + nc)};
    if (fdio_write_all(ctl_fd, &h, sizeof h) || (na && fdio_write_all(ctl_fd, a, na)) ||
        (nb && fdio_write_all(ctl_fd, b, nb)) || (nc && fdio_write_all(ctl_fd, c, nc)))
        _exit(3);  // the caller is gone: nothing left to report to
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (errno && k > 0 && (size_t)k < sizeof msg - 40) jail_fmt(msg + k, sizeof msg - (size_t)k, ": %s", strerror(errno));
    send_msg(JAIL_MSG_FAIL, 0, msg, strlen(msg), NULL, 0, NULL, 0);
    _exit(2);
}

// ---------------------------------------------------------------------------------------------
// root filesystem

static int set_mount_ro_recursive(const char *path) {
#ifdef SYS_mount_setattr
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV};
    if (syscall(SYS_mount_setattr, AT_FDCWD, path, AT_RECURSIVE, &attr, sizeof attr) == 0) return 0;
#endif
    return -1;
}

// Binds a host directory read-only at dst (recursively; the top mount alone on kernels without
// mount_setattr, keeping the flags the host mount has locked).
static void bind_ro(const char *src, const char *dst) {
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL)) die("bind mount %s", src);
    if (set_mount_ro_recursive(dst) == 0) return;
    struct statvfs sv;
    unsigned long keep = 0;
    if (statvfs(src, &sv) == 0) keep = (sv.f_flag & ST_NOEXEC ? MS_NOEXEC : 0) | (sv.f_flag & ST_NOATIME ? MS_NOATIME : 0);
    if (mount(NULL, dst, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | keep, NULL))
        die("remount %s read-only", dst);
}

static void write_file_at(const char *path, const char *data, size_t len, int mode) {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0 || fdio_write_all(fd, data, len)) die("writing %s", path);
    close(fd);
}

static void mkdir_or_die(const char *path, int mode) {
    if (mkdir(path, mode) && errno != EEXIST) die("mkdir %s", path);
}

// Host dirs in the root: /usr bound read-only; /bin, /lib, /lib64, /sbin as the host has them
// (merged-/usr symlinks are copied as symlinks, real dirs bound read-only).
static void populate_system_dirs(void) {
    static const char *const dirs[] = {"/usr", "/bin", "/lib", "/lib64", "/lib32", "/libx32", "/sbin"};
    char dst[256], target[256];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        struct stat st;
        if (lstat(dirs[i], &st)) continue;
        jail_fmt(dst, sizeof dst, NEWROOT "%s", dirs[i]);
        if (S_ISLNK(st.st_mode)) {
            ssize_t k = readlink(dirs[i], target, sizeof target - 1);
            if (k <= 0) continue;
            target[k] = 0;
            if (symlink(target, dst)) die("symlink %s", dst);
        } else if (S_ISDIR(st.st_mode)) {
            mkdir_or_die(dst, 0755);
            bind_ro(dirs[i], dst);
        }
    }
}

static void populate_dev(void) {
    static const char *const nodes[] = {"null", "zero", "full", "random", "urandom"};
    char src[64], dst[128];
    mkdir_or_die(NEWROOT "/dev", 0755);
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        jail_fmt(src, sizeof src, "/dev/%s", nodes[i]);
        jail_fmt(dst, sizeof dst, NEWROOT "/dev/%s", nodes[i]);
        write_file_at(dst, "", 0, 0666);
        if (mount(src, dst, NULL, MS_BIND, NULL)) die("bind mount %s", src);
    }
    if (symlink("/proc/self/fd", NEWROOT "/dev/fd") || symlink("/proc/self/fd/0", NEWROOT "/dev/stdin") ||
        symlink("/proc/self/fd/1", NEWROOT "/dev/stdout") || symlink("/proc/self/fd/2", NEWROOT "/dev/stderr"))
        die("symlinks in /dev");
}

static void populate_etc(int uid) {
    char buf[256];
    mkdir_or_die(NEWROOT "/etc", 0755);
    int k = snprintf(buf, sizeof buf, "root:x:0:0:root:/:/bin/false\nsandbox:x:%d:%d:sandbox:/work:/bin/false\n", uid, uid);
    write_file_at(NEWROOT "/etc/passwd", buf, (size_t)k, 0644);
    k = snprintf(buf, sizeof buf, "root:x:0:\nsandbox:x:%d:\n", uid);
    write_file_at(NEWROOT "/etc/group", buf, (size_t)k, 0644);
    const char *hosts = "127.0.0.1 localhost\n::1 localhost\n";
    write_file_at(NEWROOT "/etc/hosts", hosts, strlen(hosts), 0644);
    // the JDK's configuration (Debian keeps it in /etc/java-<version>-openjdk, linked from the
    // JDK under /usr: security and logging properties the JVM will not start without)
    DIR *etc = opendir("/etc");
    struct dirent *e;
    char src[300], dst[300];
    while (etc && (e = readdir(etc))) {
        struct stat st;
        if (strncmp(e->d_name, "java-", 5) || strlen(e->d_name) > 200) continue;
        jail_fmt(src, sizeof src, "/etc/%s", e->d_name);
        if (lstat(src, &st) || !S_ISDIR(st.st_mode)) continue;
        jail_fmt(dst, sizeof dst, NEWROOT "/etc/%s", e->d_name);
        mkdir_or_die(dst, 0755);
        bind_ro(src, dst);
    }
    if (etc) closedir(etc);
    // the loader cache: without it every shared library is searched for along the default paths
    if (access("/etc/ld.so.cache", R_OK) == 0) {
        write_file_at(NEWROOT "/etc/ld.so.cache", "", 0, 0644);
        if (mount("/etc/ld.so.cache", NEWROOT "/etc/ld.so.cache", NULL, MS_BIND, NULL)) die("bind /etc/ld.so.cache");
        mount(NULL, NEWROOT "/etc/ld.so.cache", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL);
    }
}

int jail_name_ok(const char *name) {
    if (!name || !name[0] || name[0] == '/' || strlen(name) > 200) return 0;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 32 || *p == '\\') return 0;
    const char *s = name;
    while (*s) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
        s += n + (e ? 1 : 0);
        if (e && !*s) return 0;
    }
    return 1;
}

static void write_work_files(const char *dir, const jail_spec_t *spec, int uid) {
    char path[600];
    for (int i = 0; i < spec->n_files; i++) {
        const jail_file_t *f = &spec->files[i];
        if (!jail_name_ok(f->name)) errno = 0, die("file name '%.100s' is not a plain relative path", f->name ? f->name : "");
        jail_fmt(path, sizeof path, "%s/%s", dir, f->name);
        for (char *p = path + strlen(dir) + 1; (p = strchr(p, '/')); p++) {  // parents
            *p = 0;
            mkdir_or_die(path, 0755);
            if (lchown(path, uid, uid)) die("chown %s", path);
            *p = '/';
        }
        write_file_at(path, f->data ? f->data : "", f->len, f->mode ? f->mode : 0644);
        if (lchown(path, uid, uid)) die("chown %s", path);
    }
}

static void loopback_up(void) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    jail_fmt(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    close(s);
}

// Everything of the root but the work dir, which depends on the job; ends inside the new root.
static void build_root(int uid) {
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) die("making / private");
    if (mount("tmpfs", NEWROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,nr_inodes=256,mode=0755")) die("mounting the root tmpfs");
    populate_system_dirs();
    populate_dev();
    populate_etc(uid);
    mkdir_or_die(NEWROOT "/proc", 0555);
    // before pivot_root: the kernel only lets a namespace mount proc while a full proc is visible
    if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") &&
        mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
        die("mounting /proc");
    mkdir_or_die(NEWROOT "/work", 0755);
    if (symlink("/work", NEWROOT "/tmp")) die("symlink /tmp");
    if (mount(NULL, NEWROOT, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL)) die("remounting / read-only");
    if (chdir(NEWROOT) || syscall(SYS_pivot_root, ".", ".")) die("pivot_root");
    if (umount2(".", MNT_DETACH)) die("detaching the host root");
    if (chdir("/")) die("chdir /");
}

// The job's work dir: a tmpfs of its size on /work (mounting on the read-only root's empty dir),
// holding the job's files.
static void work_opts(char *opts, size_t n, const jail_spec_t *spec, int uid) {
    jail_fmt(opts, n, "size=%zu,nr_inodes=%d,mode=0755,uid=%d,gid=%d", spec->work_bytes ? spec->work_bytes : (64u << 20),
             spec->work_inodes > 0 ? spec->work_inodes : 1024, uid, uid);
}

// (No process keeps /work as its working directory: the steps chdir there themselves, and a fresh
// /work must not leave the old one alive.)
static void mount_work(const jail_spec_t *spec, int uid) {
    char opts[160];
    work_opts(opts, sizeof opts, spec, uid);
    if (mount("tmpfs", "/work", "tmpfs", MS_NOSUID | MS_NODEV, opts)) die("mounting the /work tmpfs (%s)", opts);
    write_work_files("/work", spec, uid);
}

// Copies a directory tree (regular files, directories, symlinks; owners and modes kept) from one
// tmpfs to another.
static void copy_tree(int src, int dst, int depth) {
    int sfd = openat(src, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = sfd >= 0 ? fdopendir(sfd) : NULL;
    if (!d) die("reading the work dir");
    struct dirent *e;
    char buf[65536];
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        struct stat st;
        if (!strcmp(n, ".") || !strcmp(n, "..") || fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW)) continue;
        if (S_ISDIR(st.st_mode) && depth < 32) {
            if (mkdirat(dst, n, 0700)) die("copying the work dir: mkdir %s", n);
            int s2 = openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), d2 = openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (s2 < 0 || d2 < 0) die("copying the work dir: open %s", n);
            copy_tree(s2, d2, depth + 1);
            if (fchown(d2, st.st_uid, st.st_gid) || fchmod(d2, st.st_mode & 0777)) die("copying the work dir: chown %s", n);
            close(s2);
            close(d2);
        } else if (S_ISREG(st.st_mode)) {
            int in = openat(src, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (in < 0 || out < 0) die("copying the work dir: open %s", n);
            ssize_t r;
            while ((r = read(in, buf, sizeof buf)) > 0)
                if (fdio_write_all(out, buf, (size_t)r)) die("copying the work dir: write %s", n);
            if (r < 0 || fchown(out, st.st_uid, st.st_gid) || fchmod(out, st.st_mode & 0777)) die("copying the work dir: %s", n);
            close(in);
            close(out);
        } else if (S_ISLNK(st.st_mode)) {
            ssize_t k = readlinkat(src, n, buf, sizeof buf - 1);
            if (k < 0) continue;
            buf[k] = 0;
            if (symlinkat(buf, dst, n) || fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW)) die("copying the work dir: symlink %s", n);
        }  // fifos and sockets are not carried over
    }
    closedir(d);
}

// The tests of a request start from the same /work: the first test's is copied to a tmpfs that is
// mounted nowhere (fsmount: reachable only through our descriptor, so no program can see or change
// it), and each later test gets a fresh tmpfs on /work filled from it. Kernels without the mount
// API (before 5.2) keep the shared /work.
static void fresh_work(const jail_spec_t *spec, int uid) {
    char opts[160];
#if defined(SYS_fsopen) && defined(SYS_fsconfig) && defined(SYS_fsmount)
    if (pristine_fd < 0) {
        int fs = (int)syscall(SYS_fsopen, "tmpfs", 1 /* FSOPEN_CLOEXEC */);
        if (fs < 0) return;
        jail_fmt(opts, sizeof opts, "%zu", spec->work_bytes ? spec->work_bytes : (64u << 20));
        if (syscall(SYS_fsconfig, fs, 1 /* FSCONFIG_SET_STRING */, "size", opts, 0) ||
            syscall(SYS_fsconfig, fs, 1, "mode", "0700", 0) || syscall(SYS_fsconfig, fs, 6 /* FSCONFIG_CMD_CREATE */, NULL, NULL, 0))
            die("creating the tmpfs of the tests' work dir");
        pristine_fd = (int)syscall(SYS_fsmount, fs, 1 /* FSMOUNT_CLOEXEC */, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
        close(fs);
        if (pristine_fd < 0) die("fsmount of the tests' work dir");
        int w = open("/work", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w < 0) die("open /work");
        copy_tree(w, pristine_fd, 0);
        close(w);
        return;
    }
    if (chdir("/") || umount2("/work", MNT_DETACH)) die("unmounting the last test's /work");
    work_opts(opts, sizeof opts, spec, uid);
    if (mount("tmpfs", "/work", "tmpfs", MS_NOSUID | MS_NODEV, opts)) die("mounting the /work tmpfs (%s)", opts);
    int w = open("/work", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w < 0) die("open /work");
    copy_tree(pristine_fd, w, 0);
    close(w);
#else
    (void)spec, (void)uid, (void)opts;
#endif
}

// System V IPC objects outlive the processes that made them (detached shared memory is charged to
// the jail's cgroup but to no process): removed after each step, so that a later step, and the
// init, start with the memory the limit allows. The IPC namespace is the jail's own.
static void remove_ipc(void) {
    struct shmid_ds sd;
    struct shm_info si;
    int max = shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&si);
    for (int i = 0; i <= max; i++) {
        int id = shmctl(i, SHM_STAT, &sd);
        if (id >= 0) shmctl(id, IPC_RMID, NULL);
    }
    struct seminfo mi;
    union { int val; struct semid_ds *buf; struct seminfo *info; } arg = {.info = &mi};
    max = semctl(0, 0, SEM_INFO, arg);
    struct semid_ds sm;
    arg.buf = &sm;
    for (int i = 0; i <= max; i++) {
        int id = semctl(i, 0, SEM_STAT, arg);
        if (id >= 0) semctl(id, 0, IPC_RMID);
    }
    struct msqid_ds mq;
    max = msgctl(0, MSG_INFO, &mq);
    for (int i = 0; i <= max; i++) {
        int id = msgctl(i, MSG_STAT, &mq);
        if (id >= 0) msgctl(id, IPC_RMID, NULL);
    }
}

// ---------------------------------------------------------------------------------------------
// one step

static char *const step_env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "TMPDIR=/tmp", "LANG=C.UTF-8", NULL};

static void set_limit(int res, rlim_t soft, rlim_t hard) {
    struct rlimit r = {soft, hard};
    setrlimit(res, &r);
}

// Closes every descriptor from 3 up: close_range (Linux 5.9+), else one by one from /proc.
static void close_from_3(void) {
    if (syscall(SYS_close_range, 3, ~0U, 0) == 0) return;
    int fds[1024], n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)) && n < 1024) {
        int fd = atoi(e->d_name);
        if (fd > 2 && fd != dirfd(d)) fds[n++] = fd;
    }
    if (d) closedir(d);
    for (int i = 0; i < n; i++) close(fds[i]);
    if (!d) for (int fd = 3; fd < 65536; fd++) close(fd);  // no /proc: the slow way
}

// The confined child: from here on only the step's program runs. Failures go to its stderr.
__attribute__((noreturn)) static void exec_step(const jail_init_args_t *a, const jail_step_t *st, int in_fd, int out_fd,
                                                int err_fd, const struct sock_fprog *prog) {
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(err_fd, 2) < 0) _exit(126);
    // dispositions and the mask survive exec: the program starts from the defaults, not ours
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    close_from_3();
    setsid();
    const jail_limits_t *l = &st->lim;
    rlim_t cpu = l->cpu_s > 0 ? (rlim_t)(l->cpu_s + 0.999) : 10;
    set_limit(RLIMIT_CPU, cpu, cpu + 1);
    if (l->mem_bytes && !l->as_unlimited) set_limit(RLIMIT_AS, l->mem_bytes, l->mem_bytes);
    set_limit(RLIMIT_FSIZE, l->fsize_bytes ? l->fsize_bytes : (16u << 20), l->fsize_bytes ? l->fsize_bytes : (16u << 20));
    set_limit(RLIMIT_NOFILE, l->nofile > 0 ? (rlim_t)l->nofile : 64, l->nofile > 0 ? (rlim_t)l->nofile : 64);
    set_limit(RLIMIT_NPROC, l->nproc > 0 ? (rlim_t)l->nproc : 32, l->nproc > 0 ? (rlim_t)l->nproc : 32);
    set_limit(RLIMIT_CORE, 0, 0);
    set_limit(RLIMIT_MEMLOCK, 0, 0);
    set_limit(RLIMIT_MSGQUEUE, 0, 0);
    // the stack may grow as far as the address-space limit lets it (deep recursion is normal in
    // judged programs); unlimited also keeps libc's default thread stacks small (2 MiB) instead of
    // the size of the limit, which would spend the address space in a few threads
    set_limit(RLIMIT_STACK, RLIM_INFINITY, RLIM_INFINITY);
    if (a->confined) {
        // capabilities: empty bounding set (nothing regained on exec), root gets no special powers
        for (int c = 0; c <= 63; c++) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
        prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED |
                                     SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0);
        if (a->map_users) {
            if (setgroups(0, NULL) || setresgid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID) ||
                setresuid(SANDBOX_UID, SANDBOX_UID, SANDBOX_UID)) {
                dprintf(2, "sandbox: cannot switch to the sandbox user: %s\n", strerror(errno));
                _exit(126);
            }
        }
        struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct data[2];
        memset(data, 0, sizeof data);
        if (syscall(SYS_capset, &hdr, data)) {
            dprintf(2, "sandbox: cannot drop capabilities: %s\n", strerror(errno));
            _exit(126);
        }
    }
    if (!a->confined && geteuid() == 0 &&
        (setgroups(0, NULL) || setresgid(UNCONFINED_UID, UNCONFINED_UID, UNCONFINED_UID) ||
         setresuid(UNCONFINED_UID, UNCONFINED_UID, UNCONFINED_UID))) {
        dprintf(2, "sandbox: cannot switch to nobody: %s\n", strerror(errno));
        _exit(126);
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) _exit(126);
    if (chdir(a->confined ? "/work" : a->work_host_dir)) _exit(126);
    if (prog && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)) {
        dprintf(2, "sandbox: cannot load the seccomp filter: %s\n", strerror(errno));
        _exit(126);
    }
    char *env[sizeof step_env / sizeof step_env[0] + 16];
    size_t ne = 0;
    for (; step_env[ne]; ne++) env[ne] = step_env[ne];
    for (size_t k = 0; st->env && st->env[k] && k < 16; k++) env[ne++] = (char *)st->env[k];
    env[ne] = NULL;
    execve(st->argv[0], (char *const *)st->argv, env);
    dprintf(2, "sandbox: cannot run %s: %s\n", st->argv[0], strerror(errno));
    _exit(127);
}

typedef struct {
    char *buf;
    size_t len, cap;
    int open, over;
} stream_t;

static void stream_read(stream_t *s, int fd) {
    char tmp[65536];
    ssize_t r = read(fd, tmp, sizeof tmp);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) return;
    if (r <= 0) {
        s->open = 0;
        return;
    }
    size_t room = s->cap - s->len, take = (size_t)r < room ? (size_t)r : room;
    memcpy(s->buf + s->len, tmp, take);
    s->len += take;
    if ((size_t)r > room) s->over = 1;
}

typedef struct {
    pid_t main;
    int main_status, main_done;
    struct rusage main_ru;
    long max_rss_kb;
    double cpu_s;  // every reaped process's, with the children it reaped itself
} reap_t;

static void reap_one(reap_t *rp, pid_t pid, int status, const struct rusage *ru) {
    if (ru->ru_maxrss > rp->max_rss_kb) rp->max_rss_kb = ru->ru_maxrss;
    rp->cpu_s += (double)ru->ru_utime.tv_sec + 1e-6 * (double)ru->ru_utime.tv_usec + (double)ru->ru_stime.tv_sec +
                 1e-6 * (double)ru->ru_stime.tv_usec;
    if (pid == rp->main) rp->main_status = status, rp->main_ru = *ru, rp->main_done = 1;
}

// Kills every process of the jail but us and reaps them all.
static void kill_and_reap_all(const jail_init_args_t *a, reap_t *rp) {
    int st;
    struct rusage ru;
    pid_t p;
    if (a->confined) {
        kill(-1, SIGKILL);
        while ((p = wait4(-1, &st, 0, &ru)) > 0 || (p < 0 && errno == EINTR))
            if (p > 0) reap_one(rp, p, st, &ru);
        return;
    }
    // unconfined (accepted reduced isolation): the step's process group, then whatever we adopted
    // as subreaper, for at most two seconds; a process that left both is out of reach
    kill(-rp->main, SIGKILL);
    for (double end = jail_now() + 2.0; jail_now() < end;) {
        char path[64], buf[4096];
        jail_fmt(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0) close(fd);
        if (n > 0) {
            buf[n] = 0;
            for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) kill((pid_t)atoi(t), SIGKILL);
        }
        p = wait4(-1, &st, WNOHANG, &ru);
        if (p > 0) reap_one(rp, p, st, &ru);
        else if (p < 0 && errno == ECHILD) break;
        else usleep(1000);
    }
}

// Runs step idx and reports it. Returns 1 when its main process exited with status 0.
static int run_step(const jail_init_args_t *a, int idx, const struct sock_fprog *prog) {
    const jail_step_t *st = &a->spec->steps[idx];
    size_t cap = st->lim.out_cap ? st->lim.out_cap : (1u << 20);
    stream_t out = {malloc(cap + 1), 0, cap, 1, 0}, err = {malloc(cap + 1), 0, cap, 1, 0};
    int po[2], pe[2];
    if (!out.buf || !err.buf) die("out of memory for step output");
    if (pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC)) die("pipe");
    // stdin is a sealed in-memory file, given read-only: seekable like a judge's input file, no
    // pumping needed
    int mfd = (int)syscall(SYS_memfd_create, "stdin", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0) die("memfd_create");
    if (st->stdin_len && fdio_write_all(mfd, st->stdin_data, st->stdin_len)) die("writing stdin");
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) die("sealing stdin");
    char self_fd[64];
    jail_fmt(self_fd, sizeof self_fd, "/proc/self/fd/%d", mfd);
    int in_fd = open(self_fd, O_RDONLY | O_CLOEXEC);
    if (in_fd < 0) die("reopening stdin read-only");
    close(mfd);
    if (st->fresh_work && a->confined) fresh_work(a->spec, a->map_users ? SANDBOX_UID : 0);

    // the process is made first and waits: the caller sets the step's memory limit and makes it,
    // not us, what the OOM killer may choose, then lets us start it
    int go[2];
    if (pipe2(go, O_CLOEXEC)) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        char b;
        ssize_t r;
        do r = read(go[0], &b, 1);
        while (r < 0 && errno == EINTR);
        if (r != 1) _exit(126);
        exec_step(a, st, in_fd, po[1], pe[1], prog);
    }
    close(go[0]);
    close(po[1]);
    close(pe[1]);
    close(in_fd);
    send_msg(JAIL_MSG_BEGIN, (uint32_t)idx, NULL, 0, NULL, 0, NULL, 0);
    char ack;
    ssize_t ar;
    do ar = read(a->sync_fd, &ack, 1);
    while (ar < 0 && errno == EINTR);
    if (ar != 1) _exit(1);  // the caller is gone
    if (write(go[1], "g", 1) != 1) die("starting step %d", idx);
    close(go[1]);
    double t0 = jail_now(), deadline = t0 + (st->lim.wall_s > 0 ? st->lim.wall_s : 10.0);
    fcntl(po[0], F_SETFL, O_NONBLOCK);
    fcntl(pe[0], F_SETFL, O_NONBLOCK);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    reap_t rp = {.main = pid};
    int timed_out = 0, killed = 0;
    while (out.open || err.open) {
        // a closed stream must leave the set (fd -1): poll reports POLLHUP whatever the events asked
        struct pollfd fds[3] = {{out.open ? po[0] : -1, POLLIN, 0}, {err.open ? pe[0] : -1, POLLIN, 0}, {killed ? -1 : pidfd, POLLIN, 0}};
        double left = deadline - jail_now();
        if (!killed && left <= 0) {
            timed_out = 1;
            kill_and_reap_all(a, &rp);
            killed = 1;
            continue;
        }
        int ms = killed ? 1000 : (int)(left * 1000) + 1;
        int n = poll(fds, pidfd >= 0 ? 3 : 2, ms);
        if (n < 0 && errno == EINTR) continue;
        if (n == 0 && killed) break;  // output closed by nobody alive: cannot happen, but never hang
        if (fds[0].revents) stream_read(&out, po[0]);
        if (fds[1].revents) stream_read(&err, pe[0]);
        if (!killed && (out.over || err.over)) {
            kill_and_reap_all(a, &rp);
            killed = 1;
        }
        if (!killed && pidfd >= 0 && fds[2].revents) {
            // the main process exited: the step is over, whatever it left behind dies now
            kill_and_reap_all(a, &rp);
            killed = 1;
        }
        if (pidfd < 0 && !killed) {  // kernel without pidfd_open: poll the child
            int s;
            struct rusage ru;
            pid_t p = wait4(pid, &s, WNOHANG, &ru);
            if (p == pid) reap_one(&rp, p, s, &ru), kill_and_reap_all(a, &rp), killed = 1;
        }
    }
    if (!killed) kill_and_reap_all(a, &rp);
    double wall = jail_now() - t0;
    if (a->confined) remove_ipc();
    if (pidfd >= 0) close(pidfd);
    close(po[0]);
    close(pe[0]);

    jail_wire_step_t w;
    memset(&w, 0, sizeof w);
    w.wall_s = wall;
    w.cpu_s = rp.cpu_s;
    w.max_rss_kb = rp.max_rss_kb;
    int s = rp.main_status;
    if (out.over || err.over) w.status = JAIL_STEP_OUTPUT_LIMIT;
    else if (timed_out) w.status = JAIL_STEP_TIME_LIMIT, w.signal = SIGKILL;
    else if (WIFSIGNALED(s)) {
        w.signal = WTERMSIG(s);
        int cpu_limit = w.signal == SIGXCPU || (w.signal == SIGKILL && st->lim.cpu_s > 0 && w.cpu_s >= st->lim.cpu_s);
        w.status = cpu_limit ? JAIL_STEP_TIME_LIMIT : JAIL_STEP_SIGNALED;
    } else {
        w.status = JAIL_STEP_EXITED;
        w.exit_code = WEXITSTATUS(s);
    }
    w.out_len = out.len;
    w.err_len = err.len;
    send_msg(JAIL_MSG_STEP, (uint32_t)idx, &w, sizeof w, out.buf, out.len, err.buf, err.len);
    free(out.buf);
    free(err.buf);
    return w.status == JAIL_STEP_EXITED && w.exit_code == 0;
}

// What has been copied back: each file once (by inode, so neither a name asked for twice nor hard
// links to one file multiply the reply), and the bytes so far against the total cap.
typedef struct {
    dev_t dev[4096];
    ino_t ino[4096];
    int n;
    size_t bytes;
} fetched_t;

// Copies a file back from the work dir, refusing symlinks anywhere in the path, magic links,
// anything but a regular file, files over the cap, and files past the total cap.
static void fetch_file(const jail_init_args_t *a, int work_fd, const char *name, fetched_t *done) {
    if (!jail_name_ok(name)) return;
    struct open_how how = {.flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV};
    int fd = (int)syscall(SYS_openat2, work_fd, name, &how, sizeof how);
    if (fd < 0) return;
    struct stat st;
    size_t cap = a->spec->fetch_cap ? a->spec->fetch_cap : (1u << 20);
    size_t total = a->spec->fetch_total_cap ? a->spec->fetch_total_cap : 4 * cap;
    int seen = 0;
    if (fstat(fd, &st) == 0)
        for (int i = 0; i < done->n && !seen; i++) seen = done->dev[i] == st.st_dev && done->ino[i] == st.st_ino;
    if (seen || done->n >= 4096 || !S_ISREG(st.st_mode) || (size_t)st.st_size > cap || done->bytes + (size_t)st.st_size > total) {
        close(fd);
        return;
    }
    done->dev[done->n] = st.st_dev, done->ino[done->n++] = st.st_ino;
    done->bytes += (size_t)st.st_size;
    char *buf = malloc((size_t)st.st_size + 1);
    size_t got = buf ? fdio_read_upto(fd, buf, (size_t)st.st_size) : 0;
    close(fd);
    if (!buf) return;
    uint32_t nl = (uint32_t)strlen(name);
    send_msg(JAIL_MSG_FILE, 0, &nl, sizeof nl, name, nl, buf, got);
    free(buf);
}

// Closes every descriptor above 2 but the ones the init needs (the caller's sockets, other jails'
// pipes: none of them is ours to hold).
static void close_others(int keep1, int keep2, int keep3) {
    int keep[3] = {keep1, keep2, keep3};
    for (int i = 0; i < 3; i++)  // sort the (up to three) kept fds
        for (int j = i + 1; j < 3; j++)
            if (keep[j] < keep[i]) {
                int t = keep[i];
                keep[i] = keep[j];
                keep[j] = t;
            }
    unsigned lo = 3;
    for (int i = 0; i < 3; i++) {
        if (keep[i] < (int)lo) continue;
        if ((unsigned)keep[i] > lo) syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    syscall(SYS_close_range, lo, ~0U, 0);
}

void jail_init_main(const jail_init_args_t *args) {
    jail_init_args_t copy = *args, *a = &copy;
    close_others(a->ctl_fd, a->sync_fd, a->job_fd);
    ctl_fd = a->ctl_fd;
    char b;
    ssize_t r;
    do r = read(a->sync_fd, &b, 1);
    while (r < 0 && errno == EINTR);
    if (r != 1) _exit(1);  // the caller died or gave up before releasing us
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);  // our /proc entries stay unreadable to the sandbox user
    char err[256];
    const struct sock_fprog *prog = jail_seccomp_prog(err, sizeof err);
    if (!prog && a->confined) errno = 0, die("seccomp: %s", err);
    int uid = a->map_users ? SANDBOX_UID : 0;
    if (a->confined) {
        if (a->map_users) {
            // become the namespace's root (an unprivileged host uid) and shed the host's groups
            if (setgroups(0, NULL) || setresgid(0, 0, 0) || setresuid(0, 0, 0)) die("switching to the namespace root");
        }
        // after the credential change, which clears it: the jail dies with its caller (the whole
        // PID namespace with us). Dumpability is also reset by it, so set that again too.
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        unshare(CLONE_NEWCGROUP);  // after the caller moved us into the jail's cgroup
        if (sethostname("sandbox", 7) != 0) {
            // the jail's own UTS namespace: failing leaves the host's name visible, nothing more
        }
        loopback_up();
        build_root(uid);
        if (!a->spec) {  // made ahead: wait here, root built, for the job
            send_msg(JAIL_MSG_READY, 0, NULL, 0, NULL, 0, NULL, 0);
            a->spec = jail_job_read(a->job_fd);
            if (!a->spec) _exit(1);  // the caller went away
            close(a->job_fd);
        }
        mount_work(a->spec, uid);
    } else {
        // reduced isolation, accepted by the user: a host temp dir, owned by nobody when we are root
        prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        int owner = geteuid() == 0 ? UNCONFINED_UID : (int)geteuid();
        if (chown(a->work_host_dir, owner, owner)) die("chown %s", a->work_host_dir);
        write_work_files(a->work_host_dir, a->spec, owner);
    }
    send_msg(JAIL_MSG_STARTED, 0, NULL, 0, NULL, 0, NULL, 0);
    for (int i = 0; i < a->spec->n_steps; i++) {
        int ok = run_step(a, i, prog);
        if (a->spec->steps[i].stop_unless_ok && !ok) break;  // e.g. the compile failed
    }
    if (a->spec->n_fetch) {
        int work_fd = open(a->confined ? "/work" : a->work_host_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        static fetched_t done;
        for (int i = 0; work_fd >= 0 && i < a->spec->n_fetch; i++) fetch_file(a, work_fd, a->spec->fetch[i], &done);
    }
    send_msg(JAIL_MSG_DONE, 0, NULL, 0, NULL, 0, NULL, 0);
    _exit(0);
}
