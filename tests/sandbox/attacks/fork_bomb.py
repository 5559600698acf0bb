# classic fork bomb: bounded by RLIMIT_NPROC / pids.max, all killed at the end
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
