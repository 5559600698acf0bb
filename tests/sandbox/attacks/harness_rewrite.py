# Issue 18.11: the call-based harness lives in /work: a solution that rewrites it must not change
# how the later tests are run.
open("main.py", "w").write("print('ESCAPED: the harness was rewritten by an earlier test')\n")
def add(a, b):
    return a + b
