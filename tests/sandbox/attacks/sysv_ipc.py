# System V shared memory and POSIX queues (IPC namespace is private, limits apply)
import ctypes, ctypes.util
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
shmid = libc.shmget(0x1234, 1 << 30, 0o1000 | 0o666)  # IPC_CREAT, 1 GB
print("shmget 1GB:", shmid)
ids = open("/proc/sysvipc/shm").read().splitlines()
print("segments visible:", len(ids) - 1)
