# kills the parent, pid 1, everything it can see, and a host pid given on stdin
import os, signal, sys
host_pid = int(sys.stdin.readline())
for target in [os.getppid(), 1, host_pid]:
    try:
        os.kill(target, signal.SIGKILL)
        print("sent SIGKILL to", target)
    except OSError as e:
        print("refused", target, type(e).__name__)
try:
    os.kill(-1, signal.SIGTERM)  # everything we may signal (not ourselves)
except OSError as e:
    print("kill -1 refused", type(e).__name__)
print("still here")
