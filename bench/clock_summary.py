# bench/clock_summary.py — the card's SM clock and power during each marked phase of a benchmark:
#   python3 bench/clock_summary.py CLOCKS.csv MARKS.txt
# CLOCKS.csv: `nvidia-smi --query-gpu=timestamp,clocks.sm,power.draw,utilization.gpu --format=csv,noheader,nounits
# -lms 20`; MARKS.txt: lines "YYYY/MM/DD HH:MM:SS.mmm NAME", a phase from each mark to the next (the last mark
# ends the last phase). For each phase, the samples with the GPU busy (utilization >= 50%): their count, the
# median and lowest SM clock, the median and highest power. A kernel's rate under the card's power limit follows
# its clock; two kernels timed in phases with different clocks are compared in cycles, not seconds.
import datetime
import sys


def when(text):
    return datetime.datetime.strptime(text.strip(), "%Y/%m/%d %H:%M:%S.%f")


samples = []
for line in open(sys.argv[1]):
    f = line.split(",")
    try:
        samples.append((when(f[0]), float(f[1]), float(f[2]), float(f[3])))
    except (ValueError, IndexError):
        pass  # a header, or a field the card did not report
marks = [(when(l[:23]), l[24:].strip()) for l in open(sys.argv[2]) if len(l) > 24]
print("%-28s %7s %9s %9s %8s %8s" % ("phase", "samples", "MHz med", "MHz min", "W med", "W max"))
for (t0, name), (t1, _) in zip(marks, marks[1:]):  # the last mark closes the last phase
    busy = [s for s in samples if t0 <= s[0] < t1 and s[3] >= 50]
    if not busy:
        print("%-28s %7d" % (name, 0))
        continue
    mhz, watts = sorted(s[1] for s in busy), sorted(s[2] for s in busy)
    print("%-28s %7d %9.0f %9.0f %8.0f %8.0f" % (name, len(busy), mhz[len(mhz) // 2], mhz[0], watts[len(watts) // 2],
                                                  watts[-1]))
