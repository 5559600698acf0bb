# one huge allocation, then a growing list
s = "x" * (10 ** 10)
print("ESCAPED: allocated 10 GB")
