// burns CPU forever on every core it may use: the time limit must stop it
package main

func spin(c chan int) {
	x := 0
	for {
		x = (x*31 + 7) % 1000003
		if x == -1 {
			c <- x
		}
	}
}

func main() {
	c := make(chan int)
	for i := 0; i < 8; i++ {
		go spin(c)
	}
	<-c
}
