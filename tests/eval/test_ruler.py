"""RULER generators: lengths as asked, needles placed once, answers recoverable, with two kinds of tokenizer."""

from __future__ import annotations

import copy
import json
import re
from collections import Counter

import pytest

from asynctls_hf.eval import ruler
from asynctls_hf.eval.tasks import TaskUnavailable, count_tokens, format_prompt

SYNTHETIC = [name for name in ruler.TASKS if not name.startswith("qa")]
LENGTH = 1024


def normalized(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def generated(word_tokenizer, bpe_tokenizer):
    """Two samples of every synthetic task at LENGTH tokens, for both tokenizers."""
    tokenizers = {"word": word_tokenizer, "bpe": bpe_tokenizer}
    return {
        (kind, name): (tokenizer, ruler.TASKS[name].samples(tokenizer, LENGTH, 2, seed=0))
        for kind, tokenizer in tokenizers.items()
        for name in SYNTHETIC
    }


@pytest.mark.parametrize("kind", ["word", "bpe"])
@pytest.mark.parametrize("name", SYNTHETIC)
def test_lengths_and_recoverable_answers(generated, kind, name):
    tokenizer, samples = generated[(kind, name)]
    task = ruler.TASKS[name]
    assert len(samples) == 2
    for sample in samples:
        prompt, answers = sample["input"], sample["outputs"]
        assert sample["length"] == count_tokens(tokenizer, prompt) + task.max_new_tokens
        # At most the target; below it by less than one haystack unit (a distractor line of UUIDs is the largest).
        assert 0.9 * LENGTH <= sample["length"] <= LENGTH
        assert answers and len(set(answers)) == len(answers)
        round_trip = normalized(tokenizer.decode(tokenizer(prompt)["input_ids"], skip_special_tokens=True))
        for answer in answers:
            assert answer in prompt
            assert answer in round_trip, "the tokenizer must be able to write the answer back"
        assert task.score_sample(" ".join(answers), sample) == 1.0
        assert task.score_sample("", sample) == 0.0


@pytest.mark.parametrize("name", [name for name in SYNTHETIC if name.startswith("niah")])
def test_each_needle_is_present_exactly_once(generated, name):
    for kind in ("word", "bpe"):
        _, samples = generated[(kind, name)]
        for sample in samples:
            prompt = sample["input"]
            question = prompt[prompt.rindex("\n") :]
            for value in sample["outputs"]:
                needles = re.findall(rf"One of the special magic \w+ for (\S+) is: {re.escape(value)}\.", prompt)
                assert len(needles) == 1, f"value {value} should be in exactly one needle"
                assert prompt.count(value) == 1
                assert needles[0] in question, "the question asks for the needle's key"


def test_niah_shapes_follow_ruler(generated):
    _, single = generated[("bpe", "niah_single_1")]
    assert single[0]["input"].startswith("A special magic number is hidden within the following text.")
    assert single[0]["input"].endswith("mentioned in the provided text is")
    _, multivalue = generated[("bpe", "niah_multivalue")]
    assert len(multivalue[0]["outputs"]) == 4
    assert multivalue[0]["input"].startswith("Some special magic numbers are hidden")
    _, multikey = generated[("bpe", "niah_multikey_1")]
    assert multikey[0]["input"].count("One of the special magic numbers for") == 4
    _, distractors = generated[("bpe", "niah_multikey_2")]
    assert distractors[0]["input"].count("One of the special magic numbers for") > 10
    _, uuids = generated[("bpe", "niah_single_3")]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", uuids[0]["outputs"][0])


def test_variable_tracking_chain_is_in_order(generated):
    _, samples = generated[("word", "vt")]
    for sample in samples:
        prompt, names = sample["input"], sample["outputs"]
        question = prompt[prompt.rindex("Memorize and track") :]  # after the solved example
        value = re.search(rf"VAR {names[0]} = (\d+)", question).group(1)
        positions = [question.index(f"VAR {names[0]} = {value}")]
        hops = zip(names[:-1], names[1:], strict=True)
        positions += [question.index(f"VAR {after} = VAR {before}") for before, after in hops]
        assert positions == sorted(positions)
        assert f"assigned the value {value}" in question


def test_common_words_answers_are_the_most_common(generated):
    for kind in ("word", "bpe"):
        _, samples = generated[(kind, "cwe")]
        for sample in samples:
            words_list = sample["input"].split("Below is a numbered list of words.")[-1]
            counts = Counter(re.findall(r"\d+\. (\w+)", words_list.split("Question:")[0]))
            answers = sample["outputs"]
            assert len(answers) == 10
            assert min(counts[word] for word in answers) > max(c for word, c in counts.items() if word not in answers)


def test_frequent_words_answers_are_the_most_frequent(generated):
    for kind in ("word", "bpe"):
        _, samples = generated[(kind, "fwe")]
        for sample in samples:
            coded = sample["input"].split("coded words. ")[1].split("\nQuestion:")[0].split()
            ranked = [word for word, _ in Counter(coded).most_common()]
            assert ranked[0] == "..."
            assert ranked[1:4] == sample["outputs"]
            counts = Counter(coded)
            assert counts[ranked[3]] > counts[ranked[4]]


def test_samples_are_reproducible(bpe_tokenizer):
    task = ruler.TASKS["niah_multiquery"]
    first = task.samples(bpe_tokenizer, 512, 2, seed=3)
    assert first == task.samples(bpe_tokenizer, 512, 2, seed=3)
    assert first[0]["outputs"] != task.samples(bpe_tokenizer, 512, 2, seed=4)[0]["outputs"]
    assert first[0]["outputs"] != first[1]["outputs"]


def test_longer_contexts_use_ruler_frequencies(bpe_tokenizer):
    sample = ruler.TASKS["cwe"].samples(bpe_tokenizer, 4096, 1, seed=0)[0]
    assert 0.97 * 4096 <= sample["length"] <= 4096
    counts = Counter(re.findall(r"\d+\. (\w+)", sample["input"].split("Below is a numbered list")[-1]))
    assert {counts[word] for word in sample["outputs"]} == {30}


def test_too_short_context_is_refused(bpe_tokenizer):
    with pytest.raises(ValueError, match="ask for a longer context"):
        ruler.TASKS["niah_single_1"].samples(bpe_tokenizer, 140, 1, seed=0)


def test_chat_template_wraps_the_question_before_the_answer_prefix(bpe_tokenizer):
    tokenizer = copy.deepcopy(bpe_tokenizer)
    tokenizer.chat_template = "{% for m in messages %}<user>{{ m['content'] }}</user>{% endfor %}<assistant>"
    assert format_prompt(tokenizer, "question", " Answer:", chat=True) == "<user>question</user><assistant> Answer:"
    sample = ruler.TASKS["niah_single_1"].samples(tokenizer, 512, 1, seed=0, chat=True)[0]
    assert sample["input"].startswith("<user>A special magic number")
    assert "?</user><assistant> The special magic number for " in sample["input"]
    assert sample["length"] <= 512
    with pytest.raises(ValueError, match="no chat template"):
        format_prompt(bpe_tokenizer, "question", chat=True)


def write_qa_data(directory):
    squad = {"data": [
        {"title": f"article {article}", "paragraphs": [
            {"context": f"Paragraph {article}-{paragraph}: the river {article} flows past town {paragraph}.",
             "qas": [
                 {"question": f"Which town does river {article} pass in paragraph {paragraph}?",
                  "answers": [{"text": f"town {paragraph}"}], "is_impossible": False},
                 {"question": "What is unanswerable?", "answers": [], "is_impossible": True},
             ]}
            for paragraph in range(3)
        ]}
        for article in range(6)
    ]}
    hotpot = [
        {"question": f"Who built tower {index}?", "answer": f"builder {index}",
         "context": [[f"Tower {index}", [f"Tower {index} was built ", f"by builder {index}."]],
                     [f"City {index}", [f"City {index} has a tower."]]]}
        for index in range(8)
    ]
    (directory / "squad.json").write_text(json.dumps(squad))
    (directory / "hotpotqa.json").write_text(json.dumps(hotpot))


@pytest.mark.parametrize("name", ["qa_1", "qa_2"])
def test_qa_reads_ruler_files(tmp_path, bpe_tokenizer, name):
    write_qa_data(tmp_path)
    ruler.load_qa.cache_clear()
    samples = ruler.TASKS[name].samples(bpe_tokenizer, 512, 3, seed=0, data_dir=str(tmp_path))
    assert len(samples) == 3
    for sample in samples:
        assert sample["length"] <= 512
        assert sample["input"].endswith(" Answer:")
        assert "Document 1:\n" in sample["input"]
        assert all(answer in sample["input"] for answer in sample["outputs"])
        assert ruler.TASKS[name].score_sample(f"It is {sample['outputs'][0]}.", sample) == 1.0


def test_qa_without_data_is_unavailable(tmp_path, bpe_tokenizer):
    with pytest.raises(TaskUnavailable, match="squad.json does not exist"):
        ruler.TASKS["qa_1"].samples(bpe_tokenizer, 512, 1, seed=0, data_dir=str(tmp_path))


def test_insert_at_fractions_keeps_order_of_equal_positions():
    assert ruler.insert_at_fractions(["a", "b"], ["x", "y", "z"], [0.5, 0.5, 0.0]) == ["z", "a", "x", "y", "b"]
