# reads a file outside the sandbox by its host path, directly and through /proc tricks
import os, sys
path = sys.stdin.readline().strip()
tries = [path, "/proc/1/root" + path, "/proc/self/root" + path, "/proc/1/cwd/" + os.path.basename(path),
         "/../../../.." + path, "/work/../" + path]
for p in tries:
    try:
        with open(p) as f:
            print("ESCAPED: read", p, f.read())
    except OSError as e:
        print("refused", p, type(e).__name__)
try:
    os.chroot("/")
    print("ESCAPED: chroot worked")
except OSError:
    pass
print("contained")
