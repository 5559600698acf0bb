# infinite CPU loop: stopped by the CPU/wall limit
while True:
    pass
