// leaves zombies (never waits) and orphans
#include <stdio.h>
#include <unistd.h>
int main(void) {
    for (int i = 0; i < 20; i++)
        if (fork() == 0) {
            if (i % 2 && fork() == 0) { sleep(100); _exit(0); }  // an orphan that lingers
            _exit(0);
        }
    puts("left zombies");
    return 0;
}
