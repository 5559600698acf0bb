// floods stderr
#include <stdio.h>
int main(void) {
    for (;;) fputs("error error error error error error error error error error error error\n", stderr);
}
