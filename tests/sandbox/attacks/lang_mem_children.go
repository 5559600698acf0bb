// twelve child processes each keep 48 MiB (576 MiB against a 64 MiB limit): each is under the
// limit alone, the jail is not
package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		b := make([]byte, 48<<20)
		for j := 0; j < len(b); j += 4096 { // every page
			b[j] = 1
		}
		time.Sleep(10 * time.Second)
		fmt.Println(len(b))
		return
	}
	for i := 0; i < 12; i++ {
		exec.Command("/proc/self/exe", "child").Start()
	}
	time.Sleep(4 * time.Second)
	fmt.Println("the parent outlived its children")
}
