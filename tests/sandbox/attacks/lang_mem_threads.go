// sixteen goroutines (on their own threads) each keep 32 MiB (512 MiB against a 64 MiB limit)
package main

import (
	"fmt"
	"runtime"
	"sync"
	"time"
)

func main() {
	var wg sync.WaitGroup
	keep := make([][]byte, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func(i int) {
			runtime.LockOSThread()
			b := make([]byte, 32<<20)
			for j := 0; j < len(b); j += 4096 { // every page
				b[j] = 1
			}
			keep[i] = b
			wg.Done()
		}(i)
	}
	wg.Wait()
	time.Sleep(time.Second)
	fmt.Println("ESCAPED: all threads kept their memory", len(keep))
}
