// reads the host's secret (its directory on stdin) and writes outside /work: everything but
// /work is read-only, and the host's files are not there
package main

import (
	"fmt"
	"os"
)

func main() {
	var dir string
	fmt.Scan(&dir)
	if b, err := os.ReadFile(dir + "/secret.txt"); err == nil {
		fmt.Println("read:", string(b))
	} else {
		fmt.Println("no secret:", err)
	}
	for _, p := range []string{"/etc/written_by_sandbox", "/usr/written_by_sandbox", "/written_by_sandbox", dir + "/written_by_sandbox", "/proc/written_by_sandbox"} {
		if err := os.WriteFile(p, []byte("x"), 0644); err == nil {
			fmt.Println("ESCAPED: wrote", p)
		} else {
			fmt.Println("cannot write", err)
		}
	}
	if os.WriteFile("/work/ok.txt", []byte("x"), 0644) != nil || os.WriteFile("/tmp/written_by_sandbox", []byte("x"), 0644) != nil {
		os.Exit(1)
	}
	fmt.Println("done")
}
