# Issue 18.4: one file hard-linked under many names (or one name asked for many times) must not
# multiply into a huge response: fetched files are copied once each and capped in total.
import os
open("big", "wb").write(os.urandom(1 << 20) * 3)
for i in range(40):
    os.link("big", "link%d" % i)
print("linked")
