# twelve subshells each keep a 32 MiB string (384 MiB against a 64 MiB limit): each is under the
# limit alone, the jail is not
for i in $(seq 1 12); do
  ( s=xxxxxxxxxxxxxxxx; for k in $(seq 1 21); do s=$s$s; done; sleep 10; echo ${#s} ) &
done
sleep 5
echo "the parent outlived its children"
