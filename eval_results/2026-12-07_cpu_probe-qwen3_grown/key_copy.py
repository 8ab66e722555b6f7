"""How a probe trained with --keyed-answers copies niah_multiquery's keys: per written "K is: V" entry, whether K's
adjective and noun are those of the key the question asks in that place, and whose value V is.

    python eval_results/2026-12-07_cpu_probe-qwen3_grown/key_copy.py TOKENIZER_DIR RESULT.json...

RESULT.json: an eval result of niah_multiquery (`full_budget-all_len-L.json`) whose predictions are keyed; its prompts
are made again from its length, sample count and seed (with TOKENIZER_DIR's tokenizer, the one the eval used).
"""
import json
import re
import sys

from transformers import AutoTokenizer

from asynctls_hf.eval.runner import scored_samples


def main(tokenizer_dir: str, paths: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for path in paths:
        result = json.load(open(path))
        counts = dict.fromkeys(["entries", "adjective right", "noun right", "key right", "value right",
                                "value of the written noun's key"], 0)
        for sample, scored in scored_samples(tokenizer, result):
            asked = sample["input"].rsplit(" for ", 1)[1].removesuffix(" mentioned in the provided text are")
            asked = re.split(r", and |, ", asked)  # the question's keys, in order
            value_of = dict(zip(asked, sample["outputs"], strict=True))
            noun_value = {key.split("-", 1)[1]: value for key, value in value_of.items()}
            entries = re.findall(r"(\S+) is: (\S+?)[,.]", scored["prediction"])
            print(f"  asked {asked}\n  wrote {entries}")
            for place, (key, value) in enumerate(entries[: len(asked)]):
                adjective, _, noun = key.partition("-")
                want = asked[place]
                counts["entries"] += 1
                counts["adjective right"] += adjective == want.split("-", 1)[0]
                counts["noun right"] += noun == want.split("-", 1)[1]
                counts["key right"] += key == want
                counts["value right"] += value == value_of[want]
                counts["value of the written noun's key"] += value == noun_value.get(noun)
        print(path)
        print("  " + ", ".join(f"{name}: {count}" for name, count in counts.items()))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
