// Issue 18.1: detached System V shared memory belongs to no process, so no address-space limit
// sees it: 32 segments of 32 MiB, each touched then detached (1 GiB under a 64 MiB limit).
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(void) {
    int made = 0;
    for (int i = 0; i < 32; i++) {
        int id = shmget(IPC_PRIVATE, 32u << 20, IPC_CREAT | 0600);
        if (id < 0) break;
        char *p = shmat(id, NULL, 0);
        if (p == (void *)-1) break;
        memset(p, 1, 32u << 20);
        shmdt(p);
        made++;
    }
    printf("%d MiB of detached shared memory\n", made * 32);
    return 0;
}
