"""Teacher-forced accuracy of a probe at each position of a RULER answer: per value and character of it.

The answer given as the probe is trained to write it (train.answer_text, values in_document_order; with --keyed,
a question for several keys answered as train.keyed_list writes it: "K1 is: V1, K2 is: V2."), the probe's argmax
at every answer token is compared with the token there: which value's which character it misses when everything
before it is given, and how often it gets the other answer tokens (separators, keys). Full attention, float32,
CPU, 30 samples of seed 0.

    python answer_positions.py CHECKPOINT LENGTH TASK [--keyed]
"""

import argparse
import collections

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from asynctls_hf.eval import ruler
from asynctls_hf.probes.train import answer_text, in_document_order, queried_keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("length", type=int)
    parser.add_argument("task")
    parser.add_argument("--keyed", action="store_true")
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    model = AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=torch.float32).eval()
    right = collections.defaultdict(list)
    for sample in ruler.TASKS[args.task].make_samples(tokenizer, args.length, 30, 0):
        prompt = tokenizer(sample["input"])["input_ids"]
        values = in_document_order(args.task, sample)
        answer = tokenizer(answer_text(args.task, values, queried_keys(sample) if args.keyed else None))["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt + answer])).logits[0]
        correct = (logits[len(prompt) - 1 : -1].argmax(-1) == torch.tensor(answer)).tolist()
        pieces = [tokenizer.convert_ids_to_tokens(token).removeprefix("##") for token in answer]
        start = 0
        in_value = set()
        for index, value in enumerate(values):  # each value's tokens, found in order
            while "".join(pieces[start : start + len(value)]) != value:
                start += 1
            for character in range(len(value)):
                right[(index, character)].append(correct[start + character])
                in_value.add(start + character)
            start += len(value)
        right["other"] += [ok for position, ok in enumerate(correct) if position not in in_value]
    print(f"{args.checkpoint} {args.task} {args.length} tokens{' keyed' if args.keyed else ''}: share right per value "
          "(rows) and character (columns), 30 samples")
    for index in range(len(values)):
        print(f"value {index}: " + " ".join(f"{sum(right[(index, c)]) / len(right[(index, c)]):.2f}"
                                            for c in range(7) if right[(index, c)]))
    print(f"other answer tokens: {sum(right['other']) / len(right['other']):.2f}")


if __name__ == "__main__":
    main()
