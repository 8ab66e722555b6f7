"""Where does a probe look when it writes the first token of a niah_multikey_1 answer?

    python needle_attention.py CHECKPOINT [LENGTH (1024)] [SAMPLES (20)]   (repo root on PYTHONPATH; CPU, float32)

For each sample (the eval's samples, seed 0), the attention of the prompt's last position (the answer's first token
is predicted there) per layer and head, summed over each needle sentence ("One of the special magic numbers for K
is: V."): the asked key's needle and the three other keys' needles. Prints per layer the head that puts the most on
needles, averaged over samples: its mass on the asked needle, on the other three together, and the share of samples
where the asked needle gets more than any single other needle; then the head where that share is highest.
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from asynctls_hf.eval import ruler

path = sys.argv[1]
length = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
samples = int(sys.argv[3]) if len(sys.argv) > 3 else 20
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
needle_start = tokenizer("One of the special magic numbers for")["input_ids"]
layers, heads = model.config.num_hidden_layers, model.config.num_attention_heads
asked_mass = torch.zeros(layers, heads)
other_mass = torch.zeros(layers, heads)
asked_first = torch.zeros(layers, heads)
for sample in ruler.TASKS["niah_multikey_1"].make_samples(tokenizer, length, samples, 0):
    ids = tokenizer(sample["input"])["input_ids"]
    starts = [i for i in range(len(ids)) if ids[i : i + len(needle_start)] == needle_start]
    answer = tokenizer(sample["outputs"][0])["input_ids"]
    spans, asked = [], None
    for start in starts:
        end = ids.index(tokenizer.convert_tokens_to_ids("##."), start) + 1  # the needle's closing period
        if any(ids[i : i + len(answer)] == answer for i in range(start, end)):
            asked = len(spans)
        spans.append((start, end))
    with torch.no_grad():
        attentions = model(torch.tensor([ids]), output_attentions=True).attentions  # per layer [1, H, T, T]
    last = torch.stack([attention[0, :, -1] for attention in attentions])  # [layers, heads, T]
    mass = torch.stack([last[..., start:end].sum(-1) for start, end in spans], -1)  # [layers, heads, needles]
    others = torch.cat([mass[..., :asked], mass[..., asked + 1 :]], -1)
    asked_mass += mass[..., asked]
    other_mass += others.sum(-1)
    asked_first += (mass[..., asked] > others.max(-1).values).float()
print(f"{path}: niah_multikey_1 at {length} tokens, {samples} samples, {len(spans)} needles each")
for layer in range(layers):
    for kind, head in (("most on needles", int((asked_mass[layer] + other_mass[layer]).argmax())),
                       ("most often on the asked one", int(asked_first[layer].argmax()))):
        print(f"layer {layer}, head {head} ({kind}): asked needle {asked_mass[layer, head] / samples:.2f}, the other "
              f"needles {other_mass[layer, head] / samples:.2f}, asked needle above each other one in "
              f"{asked_first[layer, head] / samples:.0%} of samples")
