// tries the host's listening port (stdin) on loopback and an outside address: the jail's network
// namespace has only its own loopback
package main

import (
	"fmt"
	"net"
	"time"
)

func main() {
	var port int
	fmt.Scan(&port)
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", port), "1.1.1.1:53"} {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err == nil {
			fmt.Println("ESCAPED: connected to", addr)
			c.Close()
		} else {
			fmt.Println(addr, "refused:", err)
		}
	}
	fmt.Println("done")
}
