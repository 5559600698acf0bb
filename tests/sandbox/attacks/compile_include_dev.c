/* the preprocessor reads an endless device */
#include "/dev/zero"
int main(void) { return 0; }
