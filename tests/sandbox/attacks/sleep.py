# sleeps far past the wall-clock limit (uses no CPU, so only the wall limit catches it)
import time
time.sleep(1000)
print("ESCAPED: woke up")
