// Issue 18.2: detached System V shared memory fills the jail's cgroup while every process stays
// tiny (1 MiB attached at a time), so the OOM killer used to pick the jail's init ("the jail init
// died without a report": SandboxError, retried by the client). Any OOM kill in the jail must
// read MemoryLimitExceeded.
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(void) {
    int made = 0;
    for (int i = 0; i < 4000; i++) {
        int id = shmget(IPC_PRIVATE, 1u << 20, IPC_CREAT | 0600);
        if (id < 0) break;
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) break;
        memset(p, 1, 1u << 20);
        shmdt(p);
        made++;
    }
    printf("%d MiB of detached shared memory\n", made);
    return 0;
}
