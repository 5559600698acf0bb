// burns CPU forever: the time limit must stop it
let x = 0;
for (;;) x = (x * 31 + 7) % 1000003;
