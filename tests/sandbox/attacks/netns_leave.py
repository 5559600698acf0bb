# Issue 18.9 (first half): leaves loopback connections in TIME_WAIT and a port's history behind;
# netns_read, the next request, must not see them.
import socket
l = socket.socket()
l.bind(("127.0.0.1", 0))
l.listen(8)
for i in range(4):
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    c.close()  # the side that closes first keeps TIME_WAIT for a minute
    s.close()
print("left TIME_WAIT on port", l.getsockname()[1])
