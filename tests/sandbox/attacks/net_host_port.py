# connects to a port the host is listening on (its loopback is not ours)
import socket, sys
port = int(sys.stdin.readline())
for host in ["127.0.0.1", "localhost", "::1"]:
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.sendall(b"ESCAPED")
        print("ESCAPED: connected to host port", host, port)
    except OSError as e:
        print("refused", host, type(e).__name__)
