// Issue 18.13: the stdin file is sealed: the program may read it, not write it.
#include <stdio.h>
#include <unistd.h>
int main(void) {
    if (write(0, "x", 1) == 1) printf("ESCAPED: stdin was writable\n");
    char b[8];
    ssize_t r = read(0, b, sizeof b);
    printf("read %zd\n", r);
    return 0;
}
