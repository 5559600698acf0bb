# packet, netlink and raw sockets (reconfiguring or sniffing the network)
import socket
for fam, typ, proto, name in [(socket.AF_PACKET, socket.SOCK_RAW, 0, "packet"),
                              (socket.AF_NETLINK, socket.SOCK_RAW, 0, "netlink"),
                              (socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, "raw icmp")]:
    try:
        socket.socket(fam, typ, proto)
        print("ESCAPED: opened", name)
    except OSError as e:
        print("refused", name, type(e).__name__)
