// Issue 18.1: twelve children of 56 MiB each, each under the per-process address-space limit,
// 672 MiB together: the jail as a whole must be held to its memory limit (64 MiB here).
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 12; i++) {
        if (fork() == 0) {
            size_t n = 56u << 20;
            volatile char *p = malloc(n);  // volatile: the stores may not be optimised away
            if (!p) _exit(1);
            for (size_t k = 0; k < n; k += 4096) p[k] = (char)(i + 1);
            sleep(2);
            _exit(p[n / 2] == (char)(i + 1) ? 0 : 1);
        }
    }
    int st, ok = 0;
    while (wait(&st) > 0) ok += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%d children held 56 MiB each\n", ok);
    return 0;
}
