"""How far back the restatements of training's list-recall sequences reach: the share of restatements whose key (for
several keys, the farthest of them) was first stated more than four fifths, and more than half, of the text before.

    python restatement_spans.py TOKENIZER_DIR SEQUENCES FAR_KEYS...   (this folder's; from the repo root)

SEQUENCES list-recall sequences of 16k tokens (seeds 0..SEQUENCES-1, `--key-order sorted --key-lists 0.8`) per
value of --far-keys; distances in characters of the decoded text before its questions, as shares of that text.
"""
import re
import sys

from transformers import AutoTokenizer

from asynctls_hf.probes import train

RESTATEMENT = re.compile(r"One of the special magic \w+ for (\S+) is:|The special magic \w+ for (.+?) mentioned in")


def spans(tokenizer, seed: int, far_keys: float) -> list[float]:
    sequence = train.recall_sequence(tokenizer, 16384, seed, list_share=1.0, key_order="sorted", key_lists=0.8,
                                     far_keys=far_keys)
    text = tokenizer.decode(sequence.tokens)
    end = text.find("What are all the special magic")
    first_stated: dict[str, int] = {}
    result = []
    for match in RESTATEMENT.finditer(text[:end]):
        if match.group(1):
            if match.group(1) in first_stated:
                result.append((match.start() - first_stated[match.group(1)]) / end)
            else:
                first_stated[match.group(1)] = match.start()
        else:
            keys = [key for key in re.split(r",\s*(?:and\s+)?|\s+and\s+", match.group(2)) if key in first_stated]
            result.append(max((match.start() - first_stated[key]) / end for key in keys))
    return result


def main(tokenizer_dir: str, count: int, shares: list[float]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    for far_keys in shares:
        all_spans = [span for seed in range(count) for span in spans(tokenizer, seed, far_keys)]
        over = {limit: sum(span > limit for span in all_spans) / len(all_spans) for limit in (0.8, 0.5)}
        print(f"--far-keys {far_keys}: {len(all_spans)} restatements, over four fifths {over[0.8]:.3f}, "
              f"over half {over[0.5]:.3f}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), [float(share) for share in sys.argv[3:]])
