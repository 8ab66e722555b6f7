"""In which order does a probe give the four values of niah_multivalue, and which does it miss?

    python order.py CHECKPOINT LENGTH SAMPLES    (repo root on PYTHONPATH; CPU, float32, greedy)

Prints, per sample, the document rank (0 = first in the prompt) of each value it gave (-1: not a value of the
prompt) and the ranks of the values it missed, then the missed ranks counted.
"""
import collections
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from asynctls_hf.eval import ruler

path, length, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tok = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
c = collections.Counter()
for s in ruler.TASKS["niah_multivalue"].make_samples(tok, length, n, 0):
    ids = tok(s["input"], return_tensors="pt").input_ids
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=40, do_sample=False)
    pred = [p.strip(" .") for p in tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True).split(",")]
    doc = sorted(s["outputs"], key=lambda v: s["input"].index(v))  # document order
    rank = [doc.index(p) if p in doc else -1 for p in pred]
    missed = [doc.index(v) for v in doc if v not in pred]
    c.update(f"missed doc#{m}" for m in missed)
    print("doc ranks of predictions", rank, "missed", missed)
print(dict(sorted(c.items())))
