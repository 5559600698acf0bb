// Issue 18.6: Linux AIO contexts come from one host-wide pool (fs.aio-max-nr): a jail that takes
// them all makes io_setup fail for the host. io_setup must be refused.
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    unsigned long ctx = 0;
    long r = syscall(SYS_io_setup, 65536, &ctx);
    if (r == 0 || ctx) printf("ESCAPED: io_setup took 65536 host AIO events\n");
    unsigned long ctx1 = 0;
    if (syscall(SYS_io_setup, 1, &ctx1) == 0) printf("ESCAPED: io_setup works\n");
    printf("done\n");
    return 0;
}
