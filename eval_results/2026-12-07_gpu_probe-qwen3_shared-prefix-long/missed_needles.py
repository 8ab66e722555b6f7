"""Where the needles of the values a probe missed sit: their place among the question's needles in the document
(1st-4th), their depth in the text (tenths), their key's place in the question, and the value's place in ascending
order, against how often each place holds a needle at all.

    python eval_results/2026-12-07_gpu_probe-qwen3_shared-prefix-long/missed_needles.py TOKENIZER_DIR RESULT.json...

RESULT.json: an eval result of niah_multiquery or niah_multivalue (`full_budget-all_len-L.json`); its prompts are
made again from its length, sample count and seed. A value missed is a reference the answer does not contain.
"""
import json
import sys
from collections import Counter

from transformers import AutoTokenizer

from asynctls_hf.eval.runner import scored_samples


def main(tokenizer_dir: str, paths: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for path in paths:
        result = json.load(open(path))
        missed, needles = Counter(), Counter()
        for sample, scored in scored_samples(tokenizer, result):
            references, text = sample["outputs"], sample["input"]
            in_document, ascending = sorted(references, key=text.index), sorted(references)
            written = [part.strip(" .") for part in scored["prediction"].split(",")]
            for value in references:
                places = {"document": in_document.index(value) + 1, "depth": 10 * text.index(value) // len(text),
                          "question": references.index(value) + 1, "ascending": ascending.index(value) + 1}
                needles.update(places.items())
                if value not in written:
                    missed.update(places.items())
        total, asked = (sum(count for (kind, _), count in counter.items() if kind == "document")
                        for counter in (missed, needles))
        print(f"{path}: {total} missed of {asked}")
        for kind in ("document", "depth", "question", "ascending"):
            places = sorted(place for k, place in needles if k == kind)
            print(f"  by {kind}: " + ", ".join(f"{place}: {missed[kind, place]}/{needles[kind, place]}"
                                                for place in places))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
