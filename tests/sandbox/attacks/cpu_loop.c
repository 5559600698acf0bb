// infinite CPU loop in C: stopped by RLIMIT_CPU / the wall-clock limit
int main(void) {
    volatile unsigned long x = 0;
    for (;;) x++;
}
