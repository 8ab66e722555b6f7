"""Does a probe retrieve, or only copy? Teacher-forced accuracy on the first token of each answer, by where it stands.

    python first_token.py CHECKPOINT      (repo root on PYTHONPATH; CPU, float32)

On 40 training-style sequences (train.recall_sequence, 1k tokens, seeds the training does not draw first) and 40
niah_multikey_1 prompts (train.ruler_sequence, 1k): each answer span's first token (the one retrieval decides) and
whether the rest of the span is all right given it (mostly copying), split by the answer's frame: after RULER's
question ("... mentioned in the provided text is") or after a needle that restates a key ("... for K is:").
"""
import sys

import torch
from transformers import AutoModelForCausalLM

from asynctls_hf.probes import train
from asynctls_hf.probes.tokenizer import build_word_tokenizer

tokenizer = build_word_tokenizer()
model = AutoModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
question_frame = list(tokenizer(" mentioned in the provided text is")["input_ids"])
counts: dict[str, list[int]] = {}


def count(label: str, right: bool) -> None:
    entry = counts.setdefault(label, [0, 0])
    entry[0] += int(right)
    entry[1] += 1


for seed in range(10_000, 10_040):
    for source, sequence in (("recall", train.recall_sequence(tokenizer, 1024, seed)),
                             ("niah_multikey_1", train.ruler_sequence(tokenizer, "niah_multikey_1", 1024, seed))):
        tokens = torch.tensor([sequence.tokens])
        with torch.no_grad():
            predicted = model(tokens).logits[0].argmax(-1)  # predicted[t]: the guess for token t + 1
        for start, end in train.answer_spans(sequence.answers):
            frame = "question" if sequence.tokens[start - len(question_frame) : start] == question_frame else "needle"
            count(f"{source}, after a {frame}: first token", predicted[start - 1] == tokens[0, start])
            count(f"{source}, after a {frame}: the rest, all right",
                  bool((predicted[start : end - 1] == tokens[0, start + 1 : end]).all()))
for label, (right, total) in sorted(counts.items()):
    print(f"{label}: {right}/{total} = {right / total:.2f}")
