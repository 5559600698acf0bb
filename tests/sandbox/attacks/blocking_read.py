# blocks forever reading a pipe nobody writes to
import os
r, w = os.pipe()
os.read(r, 1)
print("ESCAPED: read returned")
