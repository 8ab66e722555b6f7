"""How often a probe, fed the right ascending answer so far (teacher forcing), writes the next value's first digit
and whole value right, split by whether that value shares its first digit with the value just written.
A far less noisy reading of the step the probes miss (EVAL.md, "Ascending lists at length") than 20 generated
answers.

    python eval_results/2026-12-07_cpu_probe-qwen3_shared-prefix/next_value.py LENGTH SAMPLES MODEL_DIR...

RULER's niah_multivalue and niah_multiquery prompts (seed 1, not the eval's 0) at LENGTH, the references in
ascending order after the prompt; greedy (argmax) predictions at each value's tokens, float32. Prints per model and
task: the first value (k = 1), then the later ones whose first digit is the last value's and those whose is not;
then whole values right by their needle's place in the document (1-4; 1 the farthest from the question: EVAL.md,
"Shared prefixes at length").
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from asynctls_hf.eval import ruler


def main(length: int, num_samples: int, model_dirs: list[str]) -> None:
    for model_dir in model_dirs:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        for task in ("niah_multivalue", "niah_multiquery"):
            counts = {group: [0, 0, 0] for group in ("first value", "shares the last's first digit", "does not")}
            by_place = {place: [0, 0] for place in range(1, 5)}
            for sample in ruler.TASKS[task].make_samples(tokenizer, length, num_samples, 1):
                values = sorted(sample["outputs"])
                in_document = sorted(values, key=sample["input"].index)
                prompt = tokenizer(sample["input"])["input_ids"]
                answer = tokenizer(" " + ", ".join(values) + ".")["input_ids"]
                pieces = tokenizer.convert_ids_to_tokens(answer)
                starts = [len(prompt) + i for i, piece in enumerate(pieces) if not piece.startswith("##")]
                assert len(starts) == len(values), pieces  # each value: a word-initial digit, then "##" digits
                ids = prompt + answer
                with torch.no_grad():
                    predicted = model(torch.tensor([ids])).logits[0].argmax(-1)
                for index, start in enumerate(starts):
                    end = start + len(values[index])
                    right = predicted[start - 1 : end - 1].eq(torch.tensor(ids[start:end]))
                    if index == 0:
                        group = "first value"
                    elif values[index][0] == values[index - 1][0]:
                        group = "shares the last's first digit"
                    else:
                        group = "does not"
                    counts[group][0] += 1
                    counts[group][1] += bool(right[0])
                    counts[group][2] += bool(right.all())
                    place = by_place[in_document.index(values[index]) + 1]
                    place[0] += 1
                    place[1] += bool(right.all())
            summary = "; ".join(f"{group}: first digit {digit}/{total}, whole value {whole}/{total}"
                                for group, (total, digit, whole) in counts.items())
            print(f"{model_dir} {task} {length}: {summary}", flush=True)
            print("  whole value right by needle place in the document: "
                  + ", ".join(f"{place}: {right}/{total}" for place, (total, right) in by_place.items()), flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:])
