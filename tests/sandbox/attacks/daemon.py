# double-fork daemon that tries to outlive the run and write later
import os, sys, time
d = sys.stdin.readline().strip()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(3)
        try:
            with open(os.path.join(d, "daemon_was_here"), "w") as f:
                f.write("alive")
        except OSError:
            pass
        with open("/work/late", "w") as f:
            f.write("alive")
        time.sleep(1000)
    os._exit(0)
print("parent exits, daemon detached")
