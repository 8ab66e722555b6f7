"""Greedy answers of a probe on niah_multikey_1 with its keys rewritten: which key forms it tells apart.

RULER's niah_multikey_1 states four "adjective-noun" keys, each with a 7-digit value, and asks for one. Every key
of a sample is rewritten the same way in its needle and in the question: "words" leaves them as they are; "noun"
puts a single noun in place of each key; "same-adjective" keeps each key's adjective with a new noun;
"same-noun" keeps each key's noun with a new first word. Per form: answers right, answers that are another key's
value (a distractor's needle), answers that are no value of the prompt. Full attention, float32, CPU, 20 samples
of seed 0 at 1k tokens (the new keys drawn with seed 0).

    python key_forms.py CHECKPOINT
"""

import argparse
import random
import re

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from asynctls_hf.eval import ruler
from asynctls_hf.eval.words import NOUNS

FORMS = {
    "words": lambda key, noun: key,
    "noun": lambda key, noun: noun,
    "same-adjective": lambda key, noun: f"{key.split('-')[0]}-{noun}",
    "same-noun": lambda key, noun: f"{noun}-{key.split('-')[1]}",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=torch.float32).eval()
    samples = ruler.TASKS["niah_multikey_1"].samples(tokenizer, 1024, 20, 0)
    rng = random.Random(0)
    for form, rewrite in FORMS.items():
        counts = {"right": 0, "a distractor's value": 0, "no value of the prompt": 0}
        for sample in samples:
            prompt = sample["input"]
            keys = re.findall(r"special magic numbers for ([\w-]+) is", prompt)
            for key, noun in zip(keys, rng.sample(NOUNS, len(keys)), strict=True):
                prompt = prompt.replace(key, rewrite(key, noun))
            inputs = tokenizer(prompt, return_tensors="pt")
            with torch.no_grad():
                output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
            answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
            value = re.search(r"\d{7}", answer)
            if sample["outputs"][0] in answer:
                counts["right"] += 1
            elif value and value.group() in re.findall(r"\d{7}", prompt):
                counts["a distractor's value"] += 1
            else:
                counts["no value of the prompt"] += 1
        print(form, ", ".join(f"{what} {n}" for what, n in counts.items()), flush=True)


if __name__ == "__main__":
    main()
