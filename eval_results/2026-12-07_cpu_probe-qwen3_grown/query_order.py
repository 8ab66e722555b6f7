"""In which order a probe writes niah_multiquery's (or niah_multivalue's) four values: the question's order of the
keys (what training teaches by default), the order of their needles in the document, ascending order (what
`--key-order sorted` teaches), or none of them.

    python eval_results/2026-12-07_cpu_probe-qwen3_grown/query_order.py TOKENIZER_DIR RESULT.json...

RESULT.json: an eval result of niah_multiquery or niah_multivalue (`full_budget-all_len-L.json`; for
niah_multivalue, "question order" and "first asked" read RULER's order of the values); its prompts are made again
from its length, sample count and seed. Per sample: the keys (their place in the question, 0-3) whose values the
probe wrote, in its order ('?': a value of no asked key), and the keys in document order; then the counts, and for
ascending order, how often the k-th value written is the k-th smallest and how often the next value is right after
k right ones.
"""
import json
import sys

from transformers import AutoTokenizer

from asynctls_hf.eval.runner import scored_samples


def main(tokenizer_dir: str, paths: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for path in paths:
        result = json.load(open(path))
        counts = {"question order": 0, "document order": 0, "first is the first asked": 0,
                  "first is the first in the document": 0, "ascending order": 0, "first is the smallest": 0,
                  "a value written twice": 0}
        kth_smallest, next_right, right_prefixes = [0] * 4, [0] * 3, [0] * 3
        print(path)
        for sample, scored in scored_samples(tokenizer, result):
            references = sample["outputs"]  # in the question's order of the keys
            in_document = sorted(references, key=sample["input"].index)
            # "V1, V2." or, with keyed answers, "K1 is: V1, K2 is: V2.": a value ends each comma-separated part
            written = [(part.strip(" .").split() or [""])[-1] for part in scored["prediction"].split(",")]
            keys = [references.index(value) if value in references else "?" for value in written]
            document_keys = [references.index(value) for value in in_document]
            print(f"  score {scored['score']:.2f} wrote keys {keys} document order {document_keys}")
            counts["question order"] += written == references
            counts["document order"] += written == in_document
            counts["first is the first asked"] += written[0] == references[0]
            counts["first is the first in the document"] += written[0] == in_document[0]
            counts["ascending order"] += written == sorted(references)
            counts["first is the smallest"] += written[0] == min(references)
            counts["a value written twice"] += len(set(written)) < len(written)
            ascending = sorted(references)
            for k in range(4):
                kth_smallest[k] += written[k : k + 1] == ascending[k : k + 1]
                if k < 3 and written[: k + 1] == ascending[: k + 1]:
                    right_prefixes[k] += 1
                    next_right[k] += written[k + 1 : k + 2] == ascending[k + 1 : k + 2]
        print("  " + ", ".join(f"{name}: {count}/{result['num_samples']}" for name, count in counts.items()))
        print(f"  k-th smallest written k-th (k = 1-4): {kth_smallest}; the next value right after k right ones "
              f"(k = 1-3): {', '.join(f'{right}/{of}' for right, of in zip(next_right, right_prefixes, strict=True))}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
