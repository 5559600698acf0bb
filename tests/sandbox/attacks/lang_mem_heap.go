// allocates and touches (each page) 2 GiB past the 64 MiB limit: MemoryLimitExceeded
package main

import "fmt"

func main() {
	var keep [][]byte
	for i := 0; i < 128; i++ {
		b := make([]byte, 16<<20)
		for j := 0; j < len(b); j += 4096 { // every page
			b[j] = byte(j)
		}
		keep = append(keep, b)
	}
	fmt.Println("ESCAPED: kept", len(keep)*16, "MiB")
}
