# walks /proc/*/root looking for the host filesystem
import os, glob
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("visible pids:", sorted(pids, key=int))
for p in glob.glob("/proc/*/root"):
    try:
        print(p, sorted(os.listdir(p))[:20])
        for probe in ["etc/shadow", "root", "home"]:
            if os.path.exists(os.path.join(p, probe)):
                print("ESCAPED: host path visible", os.path.join(p, probe))
    except OSError as e:
        print("refused", p, type(e).__name__)
