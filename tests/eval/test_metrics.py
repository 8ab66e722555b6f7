"""Metrics on hand-made examples with known scores; LongBench prompts, truncation and loading."""

from __future__ import annotations

import json

import pytest

from asynctls_hf.eval import longbench, metrics
from asynctls_hf.eval.tasks import TaskUnavailable, count_tokens


def test_string_match():
    assert metrics.string_match_all("The numbers are 123 and 456.", ["123", "456", "789"]) == pytest.approx(2 / 3)
    assert metrics.string_match_all("ABC-def", ["abc-DEF"]) == 1.0
    assert metrics.string_match_part("answer: Paris", ["London", "paris"]) == 1.0
    assert metrics.string_match_part("answer: Rome", ["London", "Paris"]) == 0.0
    assert metrics.ruler_postprocess("  12\x0034\t \n") == "12\n34"


def test_qa_f1():
    assert metrics.normalize_answer("The  Cat, a dog!") == "cat dog"
    assert metrics.qa_f1_score("the cat sat", "a cat sat down") == pytest.approx(2 * (2 / 2) * (2 / 3) / (1 + 2 / 3))
    assert metrics.qa_f1_score("Paris.", "paris") == 1.0
    assert metrics.qa_f1_score("London", "Paris") == 0.0
    assert metrics.qa_f1_score("", "Paris") == 0.0


def test_rouge_l():
    assert metrics.rouge_l_score("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    # LCS "the cat the mat" = 4 of 6 words on each side.
    assert metrics.rouge_l_score("the cat lay on the mat", "the cat sat in the mat") == pytest.approx(4 / 6)
    assert metrics.rouge_l_score("", "the cat") == 0.0


def test_classification():
    classes = ["Location", "Description", "Number", "City"]
    assert metrics.classification_score("Location", "Location", all_classes=classes) == 1.0
    assert metrics.classification_score("Location or Number", "Number", all_classes=classes) == 0.5
    assert metrics.classification_score("no idea", "Number", all_classes=classes) == 0.0
    # "City" is inside the reference "City of Paris": it does not count against it.
    city_classes = ["City", "City of Paris"]
    assert metrics.classification_score("City of Paris", "City of Paris", all_classes=city_classes) == 1.0


def test_retrieval_and_count():
    assert metrics.retrieval_score("Paragraph 12", "Paragraph 12") == 1.0
    assert metrics.retrieval_score("Paragraph 12 or Paragraph 3", "Paragraph 3") == 0.5
    assert metrics.retrieval_score("none", "Paragraph 3") == 0.0
    assert metrics.count_score("There are 7 unique paragraphs", 7) == 1.0
    assert metrics.count_score("7 or 8", "8") == 0.5
    assert metrics.count_score("seven", "7") == 0.0


def test_code_similarity_scores_the_first_code_line():
    reference = "return a + b"
    assert metrics.code_sim_score("\n# a comment\nreturn a + b\nprint(x)", reference) == 1.0
    assert metrics.code_sim_score("```python\nreturn a - b", reference) == pytest.approx(0.92)  # 22/24 rounded
    assert metrics.code_sim_score("// only comments", reference) == 0.0


def test_longbench_sample_score_takes_the_best_reference_and_first_line():
    score = metrics.longbench_sample_score(
        metrics.qa_f1_score, "\nParis\nand more text", ["London", "Paris"], None, first_line_only=True
    )
    assert score == 1.0
    assert metrics.longbench_sample_score(metrics.qa_f1_score, "x\nParis", ["Paris"], None, True) == 0.0
    assert metrics.longbench_sample_score(metrics.qa_f1_score, "x", [], None, False) == 0.0


def test_truncate_middle_keeps_first_and_last_halves(word_tokenizer):
    words = [f"{noun}" for noun in ("apple", "bread", "cake", "dog", "egg", "fish", "goat", "hat", "ice", "jar")]
    text = " ".join(words)
    assert longbench.truncate_middle(word_tokenizer, text, 10) == text
    assert longbench.truncate_middle(word_tokenizer, text, 4) == "apple bread" + "ice jar"
    assert longbench.truncate_middle(word_tokenizer, text, 5) == "apple bread" + "ice jar"


def test_truncate_middle_with_bpe(bpe_tokenizer):
    text = " ".join(str(number) for number in range(1000, 1400))
    ids = bpe_tokenizer(text, add_special_tokens=False)["input_ids"]
    truncated = longbench.truncate_middle(bpe_tokenizer, text, 100)
    assert truncated == bpe_tokenizer.decode(ids[:50]) + bpe_tokenizer.decode(ids[-50:])
    assert truncated.startswith("1000 1001") and truncated.endswith("1398 1399")


def longbench_rows(name: str, count: int) -> list[dict]:
    filler = " ".join(["The grass is green."] * 200)
    rows = []
    for index in range(count):
        rows.append({
            "input": f"How many? {index}" if name != "trec" else f"What city is {index}?",
            "context": f"Beginning {index}. {filler} Ending {index}.",
            "answers": [str(index)] if name != "trec" else ["Location"],
            "length": 800,
            "dataset": name,
            "language": "en",
            "all_classes": ["Location", "Number"] if name == "trec" else None,
            "_id": f"id{index}",
        })
    return rows


@pytest.mark.parametrize("layout", ["flat", "data"])
def test_longbench_local_files_prompts_and_truncation(tmp_path, bpe_tokenizer, layout):
    folder = tmp_path / "data" if layout == "data" else tmp_path
    folder.mkdir(exist_ok=True)
    for name in ("passage_count", "trec"):
        (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(row) for row in longbench_rows(name, 5)))
    longbench.load_rows.cache_clear()
    task = longbench.TASKS["passage_count"]
    samples = task.samples(bpe_tokenizer, 512, 3, seed=0, data_dir=str(tmp_path))
    assert len(samples) == 3 and [s["index"] for s in samples] == sorted(s["index"] for s in samples)
    for sample in samples:
        prompt = sample["input"]
        assert prompt.startswith("There are some paragraphs below sourced from Wikipedia.")
        assert prompt.endswith("The final answer is: ")
        assert f"Beginning {sample['index']}" in prompt and f"Ending {sample['index']}" in prompt
        assert sample["length"] == count_tokens(bpe_tokenizer, prompt) + task.max_new_tokens
        assert 500 <= sample["length"] <= 512
        assert task.score_sample(f"{sample['outputs'][0]}", sample) == 1.0
    trec = longbench.TASKS["trec"].samples(bpe_tokenizer, 4096, 2, seed=0, data_dir=str(tmp_path))
    assert trec[0]["length"] < 4096, "short prompts are not truncated"
    assert longbench.TASKS["trec"].score_sample("Location\nNumber", trec[0]) == 1.0


def test_longbench_missing_file_is_unavailable(tmp_path, bpe_tokenizer):
    with pytest.raises(TaskUnavailable, match="no qasper.jsonl"):
        longbench.TASKS["qasper"].samples(bpe_tokenizer, 512, 1, seed=0, data_dir=str(tmp_path))


def test_longbench_registry_matches_the_official_configuration():
    assert set(longbench.TASKS) == set(longbench.PROMPTS) == set(longbench.METRICS)
    assert longbench.TASKS["gov_report"].max_new_tokens == 512
    assert longbench.TASKS["samsum"].stop_at_newline
    for name, prompt in longbench.PROMPTS.items():
        assert "{context}" in prompt, name
