// allocates and touches 2 GiB past the 64 MiB limit: MemoryLimitExceeded
package main

import "fmt"

func main() {
	var keep [][]byte
	for i := 0; i < 128; i++ {
		b := make([]byte, 16<<20)
		for j := range b {
			b[j] = byte(j)
		}
		keep = append(keep, b)
	}
	fmt.Println("ESCAPED: kept", len(keep)*16, "MiB")
}
