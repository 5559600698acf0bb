# tries the host's listening port (stdin) on loopback and an outside address through bash's
# /dev/tcp: the jail's network namespace has only its own loopback
read port
(exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && echo "ESCAPED: connected to 127.0.0.1:$port" || echo "127.0.0.1 refused"
(exec 3<>/dev/tcp/1.1.1.1/53) 2>/dev/null && echo "ESCAPED: connected to 1.1.1.1:53" || echo "1.1.1.1 refused"
echo done
