// maps and populates anonymous memory until refused
#include <stdio.h>
#include <sys/mman.h>
int main(void) {
    size_t total = 0;
    for (;;) {
        void *p = mmap(NULL, 128 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED) {
            printf("mmap failed after %zu MB\n", total >> 20);
            return 1;
        }
        total += 128 << 20;
    }
}
