# Issue 18.2: detached System V shared memory fills the jail's cgroup while every process stays
# small, so the OOM killer used to pick the jail's init ("died without a report" = SandboxError,
# retried by the client). Any OOM kill in the jail must read MemoryLimitExceeded.
import ctypes, ctypes.util
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
chunk, made = 16 << 20, 0
for i in range(64):
    sid = libc.shmget(0, chunk, 0o1000 | 0o600)  # IPC_PRIVATE, IPC_CREAT
    if sid < 0:
        break
    p = libc.shmat(sid, None, 0)
    if p is None or p == ctypes.c_void_p(-1).value:
        break
    ctypes.memset(p, 1, chunk)
    libc.shmdt(p)
    made += 1
print(made * 16, "MiB of detached shared memory")
