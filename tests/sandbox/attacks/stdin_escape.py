# reads past its own stdin and probes the tty
import os, sys
data = sys.stdin.read()
print("stdin bytes:", len(data))
for p in ["/dev/tty", "/dev/console", "/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda"]:
    try:
        open(p, "rb").close()
        print("ESCAPED: opened", p)
    except OSError as e:
        print("refused", p, type(e).__name__)
