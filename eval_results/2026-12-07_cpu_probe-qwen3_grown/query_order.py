"""In which order a probe writes niah_multiquery's four values: the question's order of the keys (what training
teaches), the order of their needles in the document, or neither.

    python eval_results/2026-12-07_cpu_probe-qwen3_grown/query_order.py TOKENIZER_DIR RESULT.json...

RESULT.json: an eval result of niah_multiquery (`full_budget-all_len-L.json`); its prompts are made again from its
length, sample count and seed. Per sample: the keys (their place in the question, 0-3) whose values the probe wrote,
in its order ('?': a value of no asked key), and the keys in document order; then the counts.
"""
import json
import sys

from transformers import AutoTokenizer

from asynctls_hf.eval import ruler


def main(tokenizer_dir: str, paths: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for path in paths:
        result = json.load(open(path))
        samples = ruler.TASKS["niah_multiquery"].make_samples(tokenizer, result["length"], result["num_samples"],
                                                              result["seed"])
        counts = {"question order": 0, "document order": 0, "first is the first asked": 0,
                  "first is the first in the document": 0, "a value written twice": 0}
        print(path)
        for sample, scored in zip(samples, result["samples"], strict=True):
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
            counts["a value written twice"] += len(set(written)) < len(written)
        print("  " + ", ".join(f"{name}: {count}/{len(samples)}" for name, count in counts.items()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
