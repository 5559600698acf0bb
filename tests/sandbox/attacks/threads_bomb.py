# thread bomb: RLIMIT_NPROC counts threads too
import threading, time
n = 0
try:
    while True:
        threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
        n += 1
except RuntimeError as e:
    print("stopped after %d threads: %s" % (n, e))
raise SystemExit(1)
