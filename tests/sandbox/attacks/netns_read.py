# Issue 18.9 (second half): a request must get a network namespace of its own: nothing the
# previous request of the same worker did (sockets in TIME_WAIT) may be visible.
n = 0
for f in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"):
    try:
        n += len(open(f).read().splitlines()[1:])
    except OSError:
        pass
if n:
    print("ESCAPED: %d sockets of an earlier request are visible" % n)
print("done")
