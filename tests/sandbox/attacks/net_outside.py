# connects out of the machine (IPv4, IPv6, DNS)
import socket
for host, port in [("1.1.1.1", 53), ("8.8.8.8", 443), ("2606:4700:4700::1111", 53)]:
    try:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect((host, port))
        print("ESCAPED: connected to", host)
    except OSError as e:
        print("refused", host, type(e).__name__)
try:
    socket.getaddrinfo("example.com", 80)
    print("ESCAPED: DNS resolved")
except OSError as e:
    print("no DNS", type(e).__name__)
with open("/proc/net/dev") as f:
    ifaces = [line.split(":")[0].strip() for line in f.readlines()[2:]]
print("interfaces:", ifaces)
if ifaces != ["lo"]:
    print("ESCAPED: interfaces other than loopback:", ifaces)
