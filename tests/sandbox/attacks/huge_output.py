# prints without end: the output cap stops it
import sys
line = "y" * 1000 + "\n"
while True:
    sys.stdout.write(line)
