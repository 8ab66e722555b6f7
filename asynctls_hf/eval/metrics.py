"""Scoring functions of RULER and LongBench, each giving one prediction a score in [0, 1].

RULER (NVIDIA/RULER, scripts/eval/synthetic/constants.py): string_match_all (share of references found in the
prediction, case-insensitive) and string_match_part (1 when any reference is found). LongBench (THUDM/LongBench,
metrics.py): qa_f1, rouge_l, classification, retrieval, count and code_sim; a task score is 100 times the mean
over samples, each sample taking its best score over its references (see `longbench_sample_score`).

Where the official code needs a package, the `eval` extra provides a well-kept equivalent: rouge-score instead
of `rouge`, rapidfuzz instead of `fuzzywuzzy`.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f]")


# ---- RULER -------------------------------------------------------------------------------------------------


def ruler_postprocess(prediction: str) -> str:
    """RULER's cleanup of a generation: control characters become newlines, outer whitespace goes."""
    return _CONTROL_CHARACTERS.sub("\n", prediction).strip()


def string_match_all(prediction: str, references: list[str]) -> float:
    """Share of the references that occur in the prediction (case-insensitive)."""
    prediction = prediction.lower()
    return sum(reference.lower() in prediction for reference in references) / len(references)


def string_match_part(prediction: str, references: list[str]) -> float:
    """1.0 when any reference occurs in the prediction (case-insensitive), else 0.0."""
    prediction = prediction.lower()
    return float(any(reference.lower() in prediction for reference in references))


# ---- LongBench ---------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """SQuAD normalization: lower case, no punctuation, no articles (a, an, the), single spaces."""
    text = "".join(character for character in text.lower() if character not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction_tokens: list[str], reference_tokens: list[str]) -> float:
    """F1 of the multiset overlap of two token lists (0 when nothing is shared)."""
    shared = sum((Counter(prediction_tokens) & Counter(reference_tokens)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(prediction_tokens)
    recall = shared / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_f1_score(prediction: str, reference: str, **_) -> float:
    """Token F1 after `normalize_answer`."""
    return token_f1(normalize_answer(prediction).split(), normalize_answer(reference).split())


def rouge_l_score(prediction: str, reference: str, **_) -> float:
    """ROUGE-L F-measure (longest common subsequence of words); 0 when either side has no word."""
    from rouge_score import rouge_scorer

    if not prediction.strip() or not reference.strip():
        return 0.0
    return rouge_scorer.RougeScorer(["rougeL"]).score(reference, prediction)["rougeL"].fmeasure


def classification_score(prediction: str, reference: str, *, all_classes: list[str], **_) -> float:
    """1/n when the reference class is among the n class names found in the prediction, else 0.

    Class names that are strict substrings of the reference are not counted against it. As the official scorer
    behaves, a prediction naming no class scores 0.
    """
    found = [name for name in all_classes if name in prediction]
    found = [name for name in found if not (name in reference and name != reference)]
    return 1.0 / len(found) if reference in found else 0.0


def _share_of_numbers_equal(prediction: str, target: str) -> float:
    numbers = re.findall(r"\d+", prediction)
    return sum(number == target for number in numbers) / len(numbers) if numbers else 0.0


def retrieval_score(prediction: str, reference: str, **_) -> float:
    """Share of the numbers in the prediction equal to the paragraph number in "Paragraph N"."""
    return _share_of_numbers_equal(prediction, re.findall(r"Paragraph (\d+)", reference)[0])


def count_score(prediction: str, reference: str, **_) -> float:
    """Share of the numbers in the prediction equal to the reference count."""
    return _share_of_numbers_equal(prediction, str(reference))


def code_sim_score(prediction: str, reference: str, **_) -> float:
    """Edit similarity of the first line of code (no ```, # or // in it) to the reference, in [0, 1].

    fuzz.ratio as fuzzywuzzy reports it: the indel similarity in percent, rounded to an integer.
    """
    from rapidfuzz import fuzz

    first_code_line = next(
        (line for line in prediction.lstrip("\n").split("\n") if not any(mark in line for mark in ("`", "#", "//"))),
        "",
    )
    return round(fuzz.ratio(first_code_line, reference)) / 100


def longbench_sample_score(metric, prediction: str, references: list[str], all_classes, first_line_only: bool) -> float:
    """Best score of the prediction over the references; few-shot tasks score the first line only."""
    if first_line_only:
        prediction = prediction.lstrip("\n").split("\n")[0]
    return max((metric(prediction, reference, all_classes=all_classes) for reference in references), default=0.0)
