# many small files (inode quota of the work dir)
n = 0
try:
    while True:
        with open("f%07d" % n, "w") as f:
            f.write("x")
        n += 1
except OSError as e:
    print("stopped after %d files: %s" % (n, e))
raise SystemExit(1)
