# one ever-growing file in the work dir (RLIMIT_FSIZE, then the tmpfs quota)
import os, signal
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
written = 0
try:
    with open("big.bin", "wb") as f:
        while True:
            f.write(b"z" * (1 << 20))
            f.flush()
            written += 1
except OSError as e:
    print("stopped after %d MB: %s" % (written, e))
raise SystemExit(1)
