// Issue 18.7: cpu_time must count the program's children, waited for or not: a child burns 0.3 s
// of CPU, tells the main process, and is left running (never waited for) when the main exits.
#include <stdio.h>
#include <time.h>
#include <unistd.h>
static double cpu(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
int main(void) {
    int p[2];
    if (pipe(p)) return 1;
    if (fork() == 0) {
        volatile unsigned long x = 0;
        while (cpu() < 0.3) x++;
        if (write(p[1], "d", 1) != 1) return 1;
        for (;;) pause();
    }
    char b;
    if (read(p[0], &b, 1) != 1) return 1;
    printf("done\n");
    return 0;
}
