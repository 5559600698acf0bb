// every process starts two more, without end: the process limit and the time limit hold it, and
// none survives the run
package main

import (
	"os"
	"syscall"
	"time"
)

func main() {
	for {
		for i := 0; i < 2; i++ {
			syscall.ForkExec("/proc/self/exe", []string{os.Args[0]}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Setsid: true}})
		}
		time.Sleep(10 * time.Millisecond)
	}
}
