"""How many key names of the probes' recall sequences (half list recall) stated two different values, before
and after the fix of f20e599 (a key name drawn twice is no longer stated again), in the sequences with one value
per key, where a second value can only come from a second key of the same name.

    git show af2038b:asynctls_hf/probes/train.py > /tmp/train_before.py
    python eval_results/2026-12-07_cpu_probes_duplicate-keys/count.py /tmp/train_before.py \
        > eval_results/2026-12-07_cpu_probes_duplicate-keys/counts.txt
"""
import collections
import importlib.util
import re
import sys

from asynctls_hf.probes import train
from asynctls_hf.probes.tokenizer import build_word_tokenizer


def load(path: str):
    spec = importlib.util.spec_from_file_location("train_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["train_before"] = module
    spec.loader.exec_module(module)
    return module


def main(before_path: str, samples: int = 20) -> None:
    tokenizer = build_word_tokenizer()
    for length in (4096, 16384, 32768):
        for name, module in (("before", load(before_path)), ("after", train)):
            sequences = ambiguous_sequences = ambiguous = keys = 0
            for seed in range(samples):
                sequence = module.recall_sequence(tokenizer, length, seed=seed, list_share=0.5)
                text = tokenizer.decode(sequence.tokens)
                if re.search(r"magic \w+ are hidden", text):  # a list-recall sequence: keys have several values
                    continue
                values = collections.defaultdict(set)
                for key, value in re.findall(r"One of the special magic \w+ for (\S+) is: (\S+?)\.", text):
                    values[key].add(value)
                two = sum(len(stated) > 1 for stated in values.values())
                sequences += 1
                ambiguous_sequences += two > 0
                ambiguous += two
                keys += len(values)
            print(f"{length} {name}: {ambiguous_sequences}/{sequences} one-value sequences with a key name of two "
                  f"values; {ambiguous}/{keys} key names")


if __name__ == "__main__":
    main(sys.argv[1])
