"""How the multi-answer answers go wrong: per eval cell, the values missed and what was written in their place.

    python misses.py EVAL_DIR...      (eval.sh's folders, e.g. eval_J, eval_C; prints one line per multi-answer cell)

A sample's answer is split at commas; a value missed is a reference not written. Counted in place of them: a value
written again (a repeat of one already given) and a value that is no reference (not a needle of the question).
"""
import json
import sys
from collections import Counter
from pathlib import Path

for folder in sys.argv[1:]:
    for path in sorted(Path(folder).rglob("full_*.json")):
        result = json.loads(path.read_text())
        if result["task"] not in ("niah_multivalue", "niah_multiquery"):
            continue
        missed = repeats = strangers = 0
        for sample in result["samples"]:
            written = [value.strip(" .") for value in sample["prediction"].split(",") if value.strip(" .")]
            counts = Counter(written)
            missed += sum(reference not in counts for reference in sample["references"])
            repeats += sum(count - 1 for value, count in counts.items() if value in sample["references"])
            strangers += sum(count for value, count in counts.items() if value not in sample["references"])
        values = sum(len(sample["references"]) for sample in result["samples"])
        print(f"{result['model']} {result['task']} {result['length']}: score {result['score']}, missed {missed} of "
              f"{values}, repeats {repeats}, values not asked {strangers}")
