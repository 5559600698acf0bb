# doubles a string past the 64 MiB limit: MemoryLimitExceeded
s=xxxxxxxxxxxxxxxx
for i in $(seq 1 30); do s=$s$s; done
echo "ESCAPED: ${#s} bytes"
