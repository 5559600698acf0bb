# judging: exits 0 before printing anything
import sys
sys.exit(0)
