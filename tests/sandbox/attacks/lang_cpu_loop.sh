# burns CPU forever: the time limit must stop it
x=0
while :; do x=$(( (x * 31 + 7) % 1000003 )); done
