"""Export round trip against transformers: for every parity fixture, convert the HF directory to an
HDF5 checkpoint and back with `cispo convert`, load the exported directory with transformers'
MiniMaxForCausalLM, and compare its per-token log-probs with the fixture's recorded ones. Also checks
that the exported weights are bit-identical to the fixture's.

    python3 tests/parity/check_export.py BUILD/cispo [FIXTURES_DIR]
Prints one line per fixture and a last line with the worst |dlogp|; exits 1 above 1e-5.
"""
import os, subprocess, sys, tempfile

import torch
from safetensors.torch import load_file
from transformers import MiniMaxForCausalLM

cispo = sys.argv[1]
root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "..", "fixtures", "parity")
worst = 0.0
for name in sorted(os.listdir(root)):
    src = os.path.join(root, name)
    if not os.path.exists(os.path.join(src, "config.json")):
        continue
    with tempfile.TemporaryDirectory() as tmp:
        h5, out = os.path.join(tmp, "m.h5"), os.path.join(tmp, "hf")
        subprocess.run([cispo, "convert", src, h5], check=True)
        subprocess.run([cispo, "convert", h5, out], check=True)
        model = MiniMaxForCausalLM.from_pretrained(out, dtype=torch.float32)
        model.config._attn_implementation = "eager"
        model.eval()
        ids = torch.tensor([[int(t) for t in open(os.path.join(src, "tokens.txt")).read().split()]])
        with torch.no_grad():
            logp_all = torch.log_softmax(model(input_ids=ids).logits.float()[0], dim=-1)
        logp = logp_all[:-1].gather(1, ids[0, 1:, None])[:, 0]
        ref = load_file(os.path.join(src, "expected.safetensors"))["logprobs"]
        d = (logp - ref).abs().max().item()
        a, b = load_file(os.path.join(src, "model.safetensors")), load_file(os.path.join(out, "model.safetensors"))
        same = all(torch.equal(a[k], b[k]) for k in b) and all(
            k in b for k in a if not k.endswith(("_decay", "slope_rate")))
        print(f"{name:20s} exported model in transformers: max |dlogp| = {d:.3g}; weights bit-identical: {same}")
        worst = max(worst, d if same else float("inf"))
print(f"export round trip: worst max |dlogp| = {worst:.3g}")
sys.exit(0 if worst <= 1e-5 else 1)
