/* includes a host secret into the program, to print it at run time */
static const char s[] = {
#include "/etc/shadow"
};
int main(void) { return 0; }
