"""Reads a TensorBoard event file with TensorBoard's own reader and prints tag step value lines."""
import sys

from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

for ev in EventFileLoader(sys.argv[1]).Load():
    if ev.HasField("summary"):
        for v in ev.summary.value:
            # TensorBoard's loader migrates simple_value scalars to tensors
            val = v.simple_value if v.HasField("simple_value") else v.tensor.float_val[0]
            print(v.tag, ev.step, repr(float(val)))
    elif ev.file_version:
        print("version", ev.file_version)
