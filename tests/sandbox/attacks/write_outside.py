# writes everywhere it should not; the host paths are checked afterwards by the test
import os, sys
d = sys.stdin.readline().strip()
targets = [os.path.join(d, "written_by_sandbox"), "/etc/written_by_sandbox", "/usr/written_by_sandbox",
           "/written_by_sandbox", "/proc/written_by_sandbox", "/dev/written_by_sandbox",
           "/proc/1/root" + os.path.join(d, "written_by_sandbox2"), "/proc/sys/kernel/hostname"]
for t in targets:
    try:
        with open(t, "w") as f:
            f.write("pwned\n")
        print("wrote", t)
    except OSError as e:
        print("refused", t, type(e).__name__)
try:
    os.symlink("/etc/passwd", "link")
    with open("link", "a") as f:
        f.write("pwned\n")
    print("ESCAPED: appended through a symlink")
except OSError as e:
    print("refused symlink write", type(e).__name__)
