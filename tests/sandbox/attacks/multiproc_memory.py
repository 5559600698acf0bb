# many processes each under the per-process limit, together far over it: the cgroup bounds the jail
import os
kids = []
for i in range(16):
    pid = os.fork()
    if pid == 0:
        try:
            blocks = [bytearray(64 << 20) for _ in range(6)]  # 384 MB each
            os._exit(0)
        except MemoryError:
            os._exit(3)
    kids.append(pid)
codes = [os.waitpid(k, 0)[1] for k in kids]
print("children done", codes)
