# Issue 18.11: each test of a request must start from the same /work: a later test must not see
# what an earlier one left there.
import os
if os.path.exists("seen-by-an-earlier-test"):
    print("ESCAPED: a file of an earlier test is still in /work")
open("seen-by-an-earlier-test", "w").write("x")
a, b = map(int, input().split())
print(a + b)
