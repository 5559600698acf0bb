# Issue 18.10: bytes that are not UTF-8 must not reach the result JSON raw, and what follows a
# NUL byte must still be shown.
import sys
sys.stdout.buffer.write(b"before \xff\xfe\xc3( \x00 after-the-nul\n")
sys.stderr.buffer.write(b"err \x80\x00 err-after-nul\n")
