# anonymous shared memory outside the address-space limit: memfd_create, then /dev/shm
import os
try:
    fd = os.memfd_create("bomb")
    chunk = b"x" * (1 << 20)
    for i in range(100000):
        os.write(fd, chunk)
    print("ESCAPED: memfd grew to 100 GB")
except OSError as e:
    print("memfd refused:", e)
try:
    with open("/dev/shm/bomb", "wb") as f:
        for i in range(100000):
            f.write(b"x" * (1 << 20))
    print("ESCAPED: /dev/shm grew")
except OSError as e:
    print("/dev/shm refused:", e)
raise SystemExit(1)
