// sandbox/cgroup.c — one memory + pids (+ cpu) cgroup per jail: cgroup v2 when the host delegates
// those controllers to us, else the v1 memory and pids hierarchies when they are writable (root on
// a v1 or hybrid host), and the v1 cpu one when it is writable too. The cpu controller is optional:
// without it jails share the cores under the kernel's default scheduling. Rlimits bound each process; the cgroup bounds the jail as a whole (many processes,
// tmpfs pages), and its peak gives the memory figure of a run.
// defines: jail_cgroup_probe, jail_cgroup_create, jail_cgroup_attach, jail_cgroup_peak_kb,
//          jail_cgroup_oom_kills, jail_cgroup_destroy, jail_cgroup_acquire
//
// Creating and removing a memory cgroup costs milliseconds (the kernel sets up and tears down its
// accounting), more than the rest of a jail, so each thread keeps one across its jails
// (jail_cgroup_acquire): only one jail runs in it at a time, and it is empty between jails because
// a jail's processes are all gone once its init is reaped.
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox/jail_internal.h"

typedef struct {
    int version;
    char v2_base[512];                      // our v2 cgroup dir, its subtree has memory + pids
    char v1_mem_base[512], v1_pids_base[512];
    char v1_cpu_base[512];                  // "" when the v1 cpu controller is not writable
    int v2_cpu;                             // the v2 subtree has the cpu controller
    char why[1400];
} cg_host_t;

static cg_host_t host;
// cgroups that were busy when they should have gone (a jail still exiting in them): removed by the
// next acquire of any thread, and at exit
static char stale[8][640];
static pthread_mutex_t stale_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t host_once = PTHREAD_ONCE_INIT;
static atomic_long seq;

static int write_str(const char *dir, const char *file, const char *val) {
    char p[640];
    jail_fmt(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t w = write(fd, val, strlen(val));
    close(fd);
    return w == (ssize_t)strlen(val) ? 0 : -1;
}

static int read_str(const char *dir, const char *file, char *buf, size_t n) {
    char p[640];
    jail_fmt(p, sizeof p, "%s/%s", dir, file);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t r = read(fd, buf, n - 1);
    close(fd);
    if (r < 0) return -1;
    buf[r] = 0;
    return 0;
}

// Mount point of a cgroup hierarchy from /proc/self/mountinfo: fstype "cgroup2", or "cgroup" with
// the controller among its super options.
static int find_mount(const char *fstype, const char *controller, char *out, size_t n, char *root, size_t rn) {
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f) return -1;
    char line[4096];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        char *sep = strstr(line, " - ");
        if (!sep) continue;
        char mnt[1024], mroot[1024], fs[64], src[256], opts[1024] = "";
        if (sscanf(line, "%*s %*s %*s %1023s %1023s", mroot, mnt) != 2) continue;
        if (sscanf(sep + 3, "%63s %255s %1023s", fs, src, opts) < 2) continue;
        if (strcmp(fs, fstype)) continue;
        if (controller) {
            int has = 0;
            for (char *t = strtok(opts, ","); t; t = strtok(NULL, ",")) has |= !strcmp(t, controller);
            if (!has) continue;
        }
        jail_copy(out, n, mnt);
        jail_copy(root, rn, strcmp(mroot, "/") ? mroot : "");
        found = 0;
    }
    fclose(f);
    return found;
}

// Our path in a hierarchy from /proc/self/cgroup ("0::/path" for v2, "N:ctrl,..:/path" for v1).
static int own_path(const char *controller, char *out, size_t n) {
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f) return -1;
    char line[1024];
    int found = -1;
    while (found < 0 && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        *c2 = 0;
        const char *ctrls = c1 + 1, *path = c2 + 1;
        int match = 0;
        if (!controller) match = (ctrls[0] == 0);
        else {
            char tmp[256];
            jail_fmt(tmp, sizeof tmp, "%s", ctrls);
            for (char *t = strtok(tmp, ","); t; t = strtok(NULL, ",")) match |= !strcmp(t, controller);
        }
        if (match) jail_copy(out, n, path), found = 0;
    }
    fclose(f);
    return found;
}

// The host dir of our cgroup: mount point + our path less the mount's own root (containers mount
// a hierarchy from the middle).
static void join_path(char *out, size_t n, const char *mnt, const char *root, const char *path) {
    size_t rl = strlen(root);
    if (rl && !strncmp(path, root, rl)) path += rl;
    jail_fmt(out, n, "%s%s", mnt, strcmp(path, "/") ? path : "");
}

static int probe_v2(char *why, size_t n) {
    char mnt[512], root[512], path[512], base[1100], ctl[256];
    if (find_mount("cgroup2", NULL, mnt, sizeof mnt, root, sizeof root) || own_path(NULL, path, sizeof path))
        return jail_fmt(why, n, "no cgroup v2 hierarchy"), -1;
    join_path(base, sizeof base, mnt, root, path);
    if (read_str(base, "cgroup.controllers", ctl, sizeof ctl) || !strstr(ctl, "memory") || !strstr(ctl, "pids"))
        return jail_fmt(why, n, "cgroup v2 at %s lacks the memory and pids controllers", base), -1;
    if (read_str(base, "cgroup.subtree_control", ctl, sizeof ctl) == 0 && strstr(ctl, "memory") && strstr(ctl, "pids")) {
        jail_copy(host.v2_base, sizeof host.v2_base, base);
        return 0;
    }
    write_str(base, "cgroup.subtree_control", "+cpu");  // optional (probe_once checks)
    if (write_str(base, "cgroup.subtree_control", "+memory +pids") != 0 && geteuid() == 0 &&
        read_str(mnt, "cgroup.subtree_control", ctl, sizeof ctl) == 0 && strstr(ctl, "memory") && strstr(ctl, "pids")) {
        // our own cgroup holds processes (so cannot delegate); as root, use a sibling tree under
        // the hierarchy's root, where the controllers are already enabled
        char top[1100];
        jail_fmt(top, sizeof top, "%s/cispo-sandbox", mnt);
        if ((mkdir(top, 0755) == 0 || errno == EEXIST) && write_str(top, "cgroup.subtree_control", "+memory +pids") == 0) {
            write_str(top, "cgroup.subtree_control", "+cpu");
            jail_copy(host.v2_base, sizeof host.v2_base, top);
            return 0;
        }
    }
    if (read_str(base, "cgroup.subtree_control", ctl, sizeof ctl) != 0 || !strstr(ctl, "memory") || !strstr(ctl, "pids"))
        return jail_fmt(why, n, "cannot enable memory+pids in %s/cgroup.subtree_control (%s): run under a delegated "
                        "cgroup, e.g. systemd-run -p Delegate=yes", base, strerror(errno)), -1;
    jail_copy(host.v2_base, sizeof host.v2_base, base);
    return 0;
}

// Whether the space-separated list s has the word w ("cpu" is not "cpuset").
static int has_word(const char *s, const char *w) {
    size_t n = strlen(w);
    for (const char *p = s; (p = strstr(p, w)); p += n)
        if ((p == s || p[-1] == ' ') && (p[n] == 0 || p[n] == ' ' || p[n] == '\n')) return 1;
    return 0;
}

// Removes cgroups left by processes that died without cleaning up (killed workers).
static void remove_stale(const char *base) {
    DIR *d = opendir(base);
    struct dirent *e;
    char p[1400];
    while (d && (e = readdir(d))) {
        int pid;
        if (sscanf(e->d_name, "cispo-jail-%d-", &pid) != 1) continue;
        if (!(kill(pid, 0) != 0 && errno == ESRCH)) continue;  // its process is alive
        jail_fmt(p, sizeof p, "%s/%s", base, e->d_name);
        rmdir(p);
    }
    if (d) closedir(d);
}

static int probe_v1_one(const char *ctrl, char *out, size_t n) {
    char mnt[512], root[512], path[512], dir[1100], test[1200];
    if (find_mount("cgroup", ctrl, mnt, sizeof mnt, root, sizeof root) || own_path(ctrl, path, sizeof path)) return -1;
    join_path(dir, sizeof dir, mnt, root, path);
    jail_fmt(test, sizeof test, "%s/cispo-probe-%d", dir, (int)getpid());
    if (mkdir(test, 0700) != 0) return -1;
    rmdir(test);
    jail_copy(out, n, dir);
    return 0;
}

static void probe_once(void) {
    char why2[1300] = "";
    if (probe_v2(why2, sizeof why2) == 0) {
        char ctl[256];
        if (read_str(host.v2_base, "cgroup.subtree_control", ctl, sizeof ctl) != 0 || !has_word(ctl, "cpu"))
            write_str(host.v2_base, "cgroup.subtree_control", "+cpu");
        host.v2_cpu = read_str(host.v2_base, "cgroup.subtree_control", ctl, sizeof ctl) == 0 && has_word(ctl, "cpu");
        host.version = 2;
        remove_stale(host.v2_base);
        return;
    }
    if (probe_v1_one("memory", host.v1_mem_base, sizeof host.v1_mem_base) == 0 &&
        probe_v1_one("pids", host.v1_pids_base, sizeof host.v1_pids_base) == 0) {
        host.version = 1;
        remove_stale(host.v1_mem_base);
        remove_stale(host.v1_pids_base);
        if (probe_v1_one("cpu", host.v1_cpu_base, sizeof host.v1_cpu_base) == 0) remove_stale(host.v1_cpu_base);
        else host.v1_cpu_base[0] = 0;  // no CPU isolation between jails (README: what is held)
        return;
    }
    jail_fmt(host.why, sizeof host.why, "%s; no writable cgroup v1 memory+pids hierarchies either", why2);
}

int jail_cgroup_probe(char *why, size_t n) {
    pthread_once(&host_once, probe_once);
    if (why && n) jail_copy(why, n, host.why);
    return host.version;
}

static void stale_retry(void) {
    pthread_mutex_lock(&stale_mu);
    for (int i = 0; i < 8; i++)  // children were added before their parents
        if (stale[i][0] && (rmdir(stale[i]) == 0 || errno != EBUSY)) stale[i][0] = 0;
    pthread_mutex_unlock(&stale_mu);
}

static void stale_add(const char *dir) {
    pthread_mutex_lock(&stale_mu);
    int i = 0;
    while (i < 8 && stale[i][0]) i++;
    if (i < 8) jail_copy(stale[i], sizeof stale[i], dir);
    pthread_mutex_unlock(&stale_mu);
}

// Memory limits of one memory cgroup dir: v2 memory.max; v1 memory (+ swap, which may never be
// below it: raised first, lowered last) and socket buffers, which v1 counts apart from memory and
// only once they have a limit.
static int set_limit(int version, const char *dir, size_t old, size_t mem_bytes) {
    char v[32];
    jail_fmt(v, sizeof v, "%zu", mem_bytes);
    if (version == 2) return write_str(dir, "memory.max", v);
    int up = mem_bytes > old;
    if (up) write_str(dir, "memory.memsw.limit_in_bytes", v);  // absent without swap accounting
    if (write_str(dir, "memory.limit_in_bytes", v)) return -1;
    if (!up) write_str(dir, "memory.memsw.limit_in_bytes", v);
    write_str(dir, "memory.kmem.tcp.limit_in_bytes", v);
    return 0;
}

// mkdir of a jail's cgroup dir. Its name holds this process's pid and a sequence number of this process, so
// an existing one was left by a dead process whose pid this one reuses (its cleanup failed, or it was killed):
// the leftover (and its step and init children) is removed, empty as it is, and the dir made again.
static int mkdir_jail(const char *dir) {
    if (mkdir(dir, 0700) == 0) return 0;
    if (errno != EEXIST) return -1;
    char sub[1400];
    jail_fmt(sub, sizeof sub, "%s/step", dir);
    rmdir(sub);
    jail_fmt(sub, sizeof sub, "%s/init", dir);
    rmdir(sub);
    if (rmdir(dir) != 0) return errno = EEXIST, -1;
    return mkdir(dir, 0700);
}

// CPU of the whole jail: its own cpu cgroup (so jails share the cores equally, whatever their
// thread counts) with a CFS quota of jail_options_t.cpus CPUs per 100 ms period.
static int setup_cpu(jail_cgroup_t *cg, long id) {
    double cpus = jail_get_options()->cpus;
    cg->cpu_quota_us = cpus < 0 ? 0 : (long)((cpus > 0 ? cpus : 1.0) * 100000 + 0.5);
    if (cg->cpu_quota_us && cg->cpu_quota_us < 1000) cg->cpu_quota_us = 1000;  // the kernel's least
    char v[64];
    if (host.version == 2) {
        if (!host.v2_cpu) return cg->cpu_quota_us = 0, 0;
        jail_copy(cg->cpu_dir, sizeof cg->cpu_dir, cg->mem_dir);
        if (cg->cpu_quota_us) jail_fmt(v, sizeof v, "%ld 100000", cg->cpu_quota_us);
        return cg->cpu_quota_us ? write_str(cg->cpu_dir, "cpu.max", v) : 0;
    }
    if (!host.v1_cpu_base[0]) return cg->cpu_quota_us = 0, 0;
    jail_fmt(cg->cpu_dir, sizeof cg->cpu_dir, "%s/cispo-jail-%d-%ld", host.v1_cpu_base, (int)getpid(), id);
    if (mkdir_jail(cg->cpu_dir) != 0) {
        cg->cpu_dir[0] = 0;
        return -1;
    }
    if (!cg->cpu_quota_us) return 0;
    jail_fmt(v, sizeof v, "%ld", cg->cpu_quota_us);
    return write_str(cg->cpu_dir, "cpu.cfs_period_us", "100000") || write_str(cg->cpu_dir, "cpu.cfs_quota_us", v) ? -1 : 0;
}

// The jail's cgroup holds its init; each step's processes go to its child "step" (v2: the init to
// "init", as only leaves hold processes there). The OOM killer then never weighs the init against
// a step's processes, whatever the step fills the memory with (detached shared memory belongs to
// no process), and the step's limit can be lower than the jail's (a compile step's is larger).
int jail_cgroup_create(jail_cgroup_t *cg, size_t mem_bytes, int pids_max, char *err, size_t n) {
    memset(cg, 0, sizeof *cg);
    if (jail_cgroup_probe(NULL, 0) == 0) return jail_copy(err, n, host.why), -1;
    long id = atomic_fetch_add(&seq, 1);
    char pids[32];
    jail_fmt(pids, sizeof pids, "%d", pids_max);
    const char *base = host.version == 2 ? host.v2_base : host.v1_mem_base;
    jail_fmt(cg->mem_dir, sizeof cg->mem_dir, "%s/cispo-jail-%d-%ld", base, (int)getpid(), id);
    jail_fmt(cg->step_dir, sizeof cg->step_dir, "%s/step", cg->mem_dir);
    if (mkdir_jail(cg->mem_dir) != 0) return snprintf(err, n, "mkdir %s: %s", cg->mem_dir, strerror(errno)), -1;
    cg->version = host.version;
    cg->peak_valid = 1;
    if (host.version == 2) {
        jail_fmt(cg->init_dir, sizeof cg->init_dir, "%s/init", cg->mem_dir);
        write_str(cg->mem_dir, "memory.swap.max", "0");
        if (set_limit(2, cg->mem_dir, 0, mem_bytes) || write_str(cg->mem_dir, "pids.max", pids) ||
            write_str(cg->mem_dir, "cgroup.subtree_control", "+memory") || mkdir(cg->init_dir, 0700) || mkdir(cg->step_dir, 0700)) {
            jail_fmt(err, n, "setting up %s: %s", cg->mem_dir, strerror(errno));
            jail_cgroup_destroy(cg);
            return -1;
        }
    } else {
        jail_copy(cg->init_dir, sizeof cg->init_dir, cg->mem_dir);
        jail_fmt(cg->pids_dir, sizeof cg->pids_dir, "%s/cispo-jail-%d-%ld", host.v1_pids_base, (int)getpid(), id);
        if (mkdir_jail(cg->pids_dir) != 0) {
            jail_fmt(err, n, "mkdir %s: %s", cg->pids_dir, strerror(errno));
            cg->pids_dir[0] = 0;
            jail_cgroup_destroy(cg);
            return -1;
        }
        if (set_limit(1, cg->mem_dir, 0, mem_bytes) || write_str(cg->pids_dir, "pids.max", pids) || mkdir(cg->step_dir, 0700)) {
            jail_fmt(err, n, "setting up %s: %s", cg->mem_dir, strerror(errno));
            jail_cgroup_destroy(cg);
            return -1;
        }
    }
    if (setup_cpu(cg, id)) {
        jail_fmt(err, n, "setting up the cpu cgroup %s: %s", cg->cpu_dir, strerror(errno));
        jail_cgroup_destroy(cg);
        return -1;
    }
    cg->mem_limit = mem_bytes;
    if (jail_cgroup_set_step_mem(cg, mem_bytes)) {
        jail_fmt(err, n, "writing limits in %s: %s", cg->step_dir, strerror(errno));
        jail_cgroup_destroy(cg);
        return -1;
    }
    return 0;
}

int jail_cgroup_set_mem(jail_cgroup_t *cg, size_t mem_bytes) {
    if (cg->version == 0 || cg->mem_limit == mem_bytes) return 0;
    if (set_limit(cg->version, cg->mem_dir, cg->mem_limit, mem_bytes)) return -1;
    cg->mem_limit = mem_bytes;
    return 0;
}

int jail_cgroup_set_step_mem(jail_cgroup_t *cg, size_t mem_bytes) {
    if (cg->version == 0 || cg->step_limit == mem_bytes) return 0;
    if (set_limit(cg->version, cg->step_dir, cg->step_limit ? cg->step_limit : (size_t)-1, mem_bytes)) return -1;
    cg->step_limit = mem_bytes;
    return 0;
}

int jail_cgroup_attach(const jail_cgroup_t *cg, pid_t pid) {
    char p[32];
    jail_fmt(p, sizeof p, "%d", (int)pid);
    if (cg->version == 2) return write_str(cg->init_dir, "cgroup.procs", p);
    if (cg->version == 1)
        return write_str(cg->mem_dir, "cgroup.procs", p) | write_str(cg->pids_dir, "cgroup.procs", p) |
               (cg->cpu_dir[0] ? write_str(cg->cpu_dir, "cgroup.procs", p) : 0);
    return -1;
}

int jail_cgroup_attach_step(const jail_cgroup_t *cg, pid_t pid) {
    char p[32];
    jail_fmt(p, sizeof p, "%d", (int)pid);
    return cg->version ? write_str(cg->step_dir, "cgroup.procs", p) : -1;
}

long jail_cgroup_peak_kb(const jail_cgroup_t *cg) {
    char buf[64];
    if (cg->version == 0 || !cg->peak_valid) return -1;
    const char *f = cg->version == 2 ? "memory.peak" : "memory.max_usage_in_bytes";
    if (read_str(cg->mem_dir, f, buf, sizeof buf)) return -1;
    return atol(buf) / 1024;
}

static long oom_kills_in(int version, const char *dir) {
    char buf[1024];
    if (read_str(dir, version == 2 ? "memory.events" : "memory.oom_control", buf, sizeof buf)) return 0;
    const char *k = strstr(buf, "oom_kill ");
    return k ? atol(k + 9) : 0;
}

long jail_cgroup_oom_kills(const jail_cgroup_t *cg) {
    if (cg->version == 0) return 0;
    // whichever level counts it (v1 does not add a child's to its parent's)
    return oom_kills_in(cg->version, cg->mem_dir) + oom_kills_in(cg->version, cg->step_dir);
}

void jail_cgroup_destroy(jail_cgroup_t *cg) {
    // the jail's processes are gone once its init is reaped (the kernel waits for the whole PID
    // namespace), so the dirs are empty; retry briefly in case the kernel is still releasing them
    char *dirs[5] = {cg->step_dir, cg->version == 2 ? cg->init_dir : NULL, cg->mem_dir, cg->pids_dir,
                     cg->version == 1 ? cg->cpu_dir : NULL};
    for (int k = 0; k < 5; k++) {
        if (!dirs[k] || !dirs[k][0]) continue;
        for (int i = 0; i < 50 && rmdir(dirs[k]) != 0 && errno == EBUSY; i++) usleep(2000);
        if (access(dirs[k], F_OK) == 0) stale_add(dirs[k]);
        dirs[k][0] = 0;
    }
    cg->version = 0;
}

// ---- the calling thread's cgroup, kept across jails ----
typedef struct {
    jail_cgroup_t cg;
    size_t mem;
    int pids;
} cached_t;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static cached_t *main_cache;  // the main thread's: key destructors do not run at exit()

static void cache_free(void *p) {
    cached_t *c = p;
    if (!c) return;
    if (c == main_cache) main_cache = NULL;
    jail_cgroup_destroy(&c->cg);
    free(c);
}

static void cache_atexit(void) {
    if (main_cache) cache_free(main_cache);
    stale_retry();
}

static void cache_init(void) {
    pthread_key_create(&cache_key, cache_free);
    atexit(cache_atexit);
}

jail_cgroup_t *jail_cgroup_acquire(size_t mem_bytes, int pids_max, char *err, size_t n) {
    pthread_once(&cache_once, cache_init);
    stale_retry();
    cached_t *c = pthread_getspecific(cache_key);
    if (c && c->cg.version) {
        char v[32];
        if (jail_cgroup_set_mem(&c->cg, mem_bytes) == 0) c->mem = mem_bytes;
        if (c->pids != pids_max) {
            jail_fmt(v, sizeof v, "%d", pids_max);
            if (write_str(c->cg.version == 2 ? c->cg.mem_dir : c->cg.pids_dir, "pids.max", v) == 0) c->pids = pids_max;
        }
        if (c->mem == mem_bytes && c->pids == pids_max) {
            // peak of this jail only: v1 resets it; v2's memory.peak only grows
            c->cg.peak_valid = c->cg.version == 1 && write_str(c->cg.mem_dir, "memory.max_usage_in_bytes", "0") == 0;
            return &c->cg;
        }
        cache_free(c);  // the limits would not change (usage above the new limit): start afresh
        pthread_setspecific(cache_key, NULL);
        c = NULL;
    }
    c = calloc(1, sizeof *c);
    if (!c) return jail_fmt(err, n, "out of memory"), NULL;
    if (jail_cgroup_create(&c->cg, mem_bytes, pids_max, err, n)) {
        free(c);
        return NULL;
    }
    c->mem = mem_bytes;
    c->pids = pids_max;
    pthread_setspecific(cache_key, c);
    if (getpid() == (pid_t)syscall(SYS_gettid)) main_cache = c;
    return &c->cg;
}
