# plants symlinks where the caller will copy files back from the work dir
import os
os.symlink("/etc/passwd", "out.txt")
os.symlink("/proc/1/environ", "env.txt")
os.mkdir("d")
os.symlink("/", "d/root")
os.mkfifo("fifo.txt")
print("planted")
