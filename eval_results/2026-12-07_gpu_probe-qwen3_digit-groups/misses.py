"""The multi-answer misses of the digit-group probes' scores beside this script: answers that write one value twice,
and written values that are wrong only in their first digit group (their last four digits are a reference's).
Usage (repo root): python eval_results/2026-12-07_gpu_probe-qwen3_digit-groups/misses.py"""
import json
import re
from pathlib import Path

HERE = Path(__file__).parent
for path in sorted(HERE.glob("eval_*/**/full_budget-all_len-*.json")):
    result = json.loads(path.read_text())
    if result["task"] not in ("niah_multivalue", "niah_multiquery"):
        continue
    repeated = wrong = first_group_only = 0
    for sample in result["samples"]:
        values = re.findall(r"\d+", sample["prediction"])
        references = set(sample["references"])
        repeated += len(values) != len(set(values))
        for value in values:
            if value not in references:
                wrong += 1
                first_group_only += any(value[3:] == reference[3:] and len(value) == len(reference)
                                        for reference in references)
    print(f"{path.relative_to(HERE).parts[0]} {result['task']} {result['length']}: score {result['score']:.1f}, "
          f"{repeated}/{len(result['samples'])} answers write a value twice, {wrong} values written are wrong, "
          f"{first_group_only} of them only in the first three digits")
