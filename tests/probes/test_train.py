"""The probe training script: its sequences, loss and a few real optimizer steps on CPU at a tiny size."""

from __future__ import annotations

import json
import random
import re

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer

from asynctls_hf.eval import ruler
from asynctls_hf.eval.words import NOUNS
from asynctls_hf.probes import train
from asynctls_hf.probes.tokenizer import build_word_tokenizer, vocabulary


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer()


def test_recall_sequence_marks_restated_values_and_answers(tokenizer):
    tokens, answers, *_ = train.recall_sequence(tokenizer, 1500, seed=7)
    assert len(tokens) == len(answers) and 1000 < len(tokens) < 1800
    text = tokenizer.decode(tokens)
    assert text.startswith(ruler.NIAH_TEMPLATE_ONE.split("{context}")[0].split("{kind}")[0])
    assert tokens[-1] == tokenizer.eos_token_id and answers[-1]
    # Every answer span is a value that was stated earlier in the sequence (or EOS after a question's answer).
    spans = [tokens[start:end] for start, end in train.answer_spans(answers)]
    assert len(spans) >= 2
    for span in spans:
        value = [token for token in span if token != tokenizer.eos_token_id]
        first = next(i for i in range(len(tokens)) if tokens[i : i + len(value)] == value)
        assert not any(answers[first : first + len(value)]), "an answer must repeat a value stated before"


@pytest.mark.parametrize("seed", range(6))
def test_list_recall_sequences_list_every_value_stated_for_the_keys_asked(tokenizer, seed):
    """With list_share=1 the frame is RULER's plural one; every answer span is a list of values, each stated
    earlier by a needle (not as an answer), and some key has several."""
    tokens, answers, *_ = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0)
    assert len(tokens) == len(answers) and tokens[-1] == tokenizer.eos_token_id
    assert tokenizer.decode(tokens).startswith(ruler.NIAH_TEMPLATE.split("{kind}")[0])
    stated = tokenizer.decode([t for t, a in zip(tokens, answers, strict=True) if not a])
    longest = 0
    for start, end in train.answer_spans(answers):
        text = tokenizer.decode([t for t in tokens[start:end] if t != tokenizer.eos_token_id]).strip().rstrip(".")
        values = [value.strip() for value in text.split(",")]
        longest = max(longest, len(values))
        for value in values:
            assert f"is: {value}." in stated, f"{value} was not stated by a needle"
    assert longest >= 2


def test_ruler_sequence_ends_with_the_answer(tokenizer):
    tokens, answers, *_ = train.ruler_sequence(tokenizer, "niah_single_1", 1024, seed=3)
    answer = tokenizer.decode([t for t, a in zip(tokens, answers, strict=True) if a][:-1])
    sample = ruler.TASKS["niah_single_1"].make_samples(tokenizer, 1024, 1, train.TRAIN_SEED_OFFSET + 3)[0]
    assert ruler.TASKS["niah_single_1"].score_sample(answer, sample) == 1.0
    assert tokens[-1] == tokenizer.eos_token_id


@pytest.mark.parametrize("task", ["niah_multivalue", "niah_multiquery"])
def test_ruler_sequence_lists_a_keys_values_in_document_order(tokenizer, task):
    sample = ruler.TASKS[task].make_samples(tokenizer, 2048, 1, train.TRAIN_SEED_OFFSET + 5)[0]
    tokens, answers, *_ = train.ruler_sequence(tokenizer, task, 2048, seed=5)
    written = [value.strip() for value in
               tokenizer.decode([t for t, a in zip(tokens, answers, strict=True) if a][:-1]).rstrip(".").split(",")]
    assert sorted(written) == sorted(sample["outputs"])
    if task == "niah_multivalue":  # one key's values: where their needles stand
        assert written == sorted(sample["outputs"], key=sample["input"].index)
    else:  # one value per queried key: the question's order
        assert written == sample["outputs"]
    in_document = sorted(sample["outputs"], key=sample["input"].index)
    # --key-order: several keys' values last key first, or in their needles' order; one key's values as before
    for key_order, expected in (("reverse", written[::-1]), ("document", in_document)):
        ordered_tokens, ordered_answers, *_ = train.ruler_sequence(tokenizer, task, 2048, seed=5, key_order=key_order)
        ordered = tokenizer.decode([t for t, a in zip(ordered_tokens, ordered_answers, strict=True) if a][:-1])
        ordered = [value.strip() for value in ordered.rstrip(".").split(",")]
        assert ordered == (expected if task == "niah_multiquery" else written)
        assert ruler.TASKS[task].score_sample(", ".join(ordered), sample) == 1.0


def test_every_key_of_a_recall_sequence_has_its_own_name(tokenizer):
    """Keys are drawn from 352 nouns among others; a long sequence states hundreds of keys, and a name drawn twice
    would give one question two keys' values."""
    for seed in range(3):
        sequence = train.recall_sequence(tokenizer, 24000, seed=seed, list_share=0.5)
        text = tokenizer.decode([t for t, a in zip(sequence.tokens, sequence.answers, strict=True) if not a])
        first_values: dict[str, str] = {}
        for key, value in re.findall(r"One of the special magic \w+ for (\S+) is: (\S+?)\.", text):
            first_values.setdefault(key, value)
        stated_keys = re.findall(r"One of the special magic \w+ for (\S+) is:", text)
        assert len(stated_keys) > 100
        single = "magic numbers are hidden" not in text and "magic words are hidden" not in text and (
            "magic uuids are hidden" not in text)
        if single:  # one value per key: every needle of a key states the same value
            for key, value in re.findall(r"One of the special magic \w+ for (\S+) is: (\S+?)\.", text):
                assert value == first_values[key], key


def test_key_lists_restate_several_keys_values_so_far(tokenizer):
    """--key-lists: restatements in the context that list two to four keys' values at once, in RULER's answer
    frame, each key's values those its needles stated so far, in the frame's order of the keys; the values are
    answer tokens."""
    restatements = 0
    for seed in range(6):
        sequence = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0, key_lists=1.0)
        spans = train.answer_spans(sequence.answers)
        stated: dict[str, list[str]] = {}
        cursor = 0
        for start, end in spans:
            context = tokenizer.decode(sequence.tokens[cursor:start])
            for key, value in re.findall(r"One of the special magic \w+ for (\S+) is: (\S+?)\.", context):
                stated.setdefault(key, [])
                if value not in stated[key]:
                    stated[key].append(value)
            cursor = end
            if "What are all" in context or not context.endswith("mentioned in the provided text are"):
                continue
            keys = train.queried_keys({"input": context})
            if len(keys) > 1:
                restatements += 1
                written = tokenizer.decode(sequence.tokens[start:end]).strip(" .").split(", ")
                assert written == [value for key in keys for value in stated[key]]
    assert restatements > 0
    assert train.recall_sequence(tokenizer, 2000, seed=0, list_share=1.0, key_lists=0.0) == train.recall_sequence(
        tokenizer, 2000, seed=0, list_share=1.0)


def test_shared_prefix_values_begin_as_an_earlier_value_does(tokenizer):
    """--shared-prefix 1: in a list-recall sequence of numbers, every needle value after the first begins with one
    to three digits of a value stated before it, and no value is stated for two needles; 0 changes nothing."""
    sequences = 0
    for seed in range(12):
        sequence = train.recall_sequence(tokenizer, 1500, seed=seed, list_share=1.0, shared_prefix=1.0)
        text = tokenizer.decode(sequence.tokens)
        values = list(dict.fromkeys(re.findall(r"One of the special magic numbers for \S+ is: (\d+)\.", text)))
        if len(values) < 2:
            continue
        sequences += 1
        for index, value in enumerate(values[1:], start=1):
            assert any(value[0] == earlier[0] for earlier in values[:index]), (value, values[:index])
        needles = re.findall(r"One of the special magic numbers for (\S+) is: (\d+)\.", text)
        assert len({value for _, value in needles}) == len(dict.fromkeys(needles))  # one key per value
    assert sequences > 0
    assert train.recall_sequence(tokenizer, 1500, seed=3, list_share=1.0, shared_prefix=0.0) == train.recall_sequence(
        tokenizer, 1500, seed=3, list_share=1.0)


def test_shared_prefix_is_a_share(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        train.main(["--shared-prefix", "1.5", "--out", str(tmp_path / "probe")])
    assert error.value.code == 2 and "--shared-prefix is a share of values" in capsys.readouterr().err


def test_far_keys_restate_one_of_the_earliest_stated_keys(tokenizer):
    """--far-keys 1: every restatement names one of the earliest-stated quarter of the keys, among distinct keys
    in no fixed place; 0 draws as before (one key uniformly, several by rng.sample), and sequences are unchanged."""
    stated = [f"key{index}" for index in range(12)]
    rng = random.Random(0)
    places = set()
    for _ in range(200):
        count = rng.randint(1, 4)
        keys = train.restated_keys(stated, count, 1.0, rng)
        assert len(keys) == count == len(set(keys)) and set(keys) <= set(stated)
        assert any(key in stated[:3] for key in keys), keys
        places |= {index for index, key in enumerate(keys) if key in stated[:3]}
    assert places == {0, 1, 2, 3}
    assert [train.restated_keys(stated, 1, 1.0, random.Random(seed))[0] for seed in range(40)].count("key0") > 5
    assert train.restated_keys(stated, 1, 0.0, random.Random(5)) == [random.Random(5).choice(stated)]
    assert train.restated_keys(stated, 3, 0.0, random.Random(5)) == random.Random(5).sample(stated, 3)
    assert train.recall_sequence(tokenizer, 1500, seed=3, list_share=1.0, key_lists=0.5, far_keys=0.0) == (
        train.recall_sequence(tokenizer, 1500, seed=3, list_share=1.0, key_lists=0.5))
    assert train.recall_sequence(tokenizer, 1500, seed=3, list_share=1.0, key_lists=0.5, far_keys=1.0) != (
        train.recall_sequence(tokenizer, 1500, seed=3, list_share=1.0, key_lists=0.5))


def test_far_keys_is_a_share(tmp_path, capsys):
    with pytest.raises(SystemExit) as error:
        train.main(["--far-keys", "-0.1", "--out", str(tmp_path / "probe")])
    assert error.value.code == 2 and "--far-keys is a share of restatements" in capsys.readouterr().err


@pytest.mark.parametrize("key_order", ["reverse", "document"])
def test_key_order_reorders_only_the_answers_for_several_keys(tokenizer, key_order):
    """recall_sequence with key_order: the same sequence, except that each answer for several keys lists their
    values in another order: last key first (the question names them in the other order), or each value where the
    needle that first stated it stands; answers for one key and every other token stay."""
    several = 0
    for seed in range(8):
        plain = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0)
        ordered = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0, key_order=key_order)
        assert len(plain.tokens) == len(ordered.tokens) and plain.answers == ordered.answers
        for start, end in train.answer_spans(plain.answers):
            before = tokenizer.decode(plain.tokens[:start])
            if not before.endswith("mentioned in the provided text are"):  # a restated needle, not a question
                assert plain.tokens[start:end] == ordered.tokens[start:end]
                continue
            keys = train.queried_keys({"input": before[-1000:]})
            plain_values = tokenizer.decode(plain.tokens[start:end - 1]).strip(" .").split(", ")
            ordered_values = tokenizer.decode(ordered.tokens[start:end - 1]).strip(" .").split(", ")
            if len(keys) == 1:
                assert plain_values == ordered_values
                continue
            several += 1
            assert sorted(plain_values) == sorted(ordered_values)
            if key_order == "reverse":
                assert plain_values != ordered_values
            else:
                needles = re.findall(r"One of the special magic \w+ for (\S+) is: (\S+?)\.", before)
                first_places = {pair: place for place, pair in reversed(list(enumerate(needles)))}
                asked = {value: place for (key, value), place in first_places.items() if key in keys}
                places = [asked[value] for value in ordered_values]
                assert places == sorted(places)
        other = [i for i, is_answer in enumerate(plain.answers) if not is_answer]
        assert [plain.tokens[i] for i in other] == [ordered.tokens[i] for i in other]
    assert several > 0



def test_keyed_answers_name_each_queried_key_before_its_value(tokenizer):
    """--keyed-answers: a niah_multiquery answer is 'K1 is: V1, K2 is: V2, ...' in the question's order, scored
    as fully right; a single key's values (niah_multivalue) are written as before."""
    sample = ruler.TASKS["niah_multiquery"].make_samples(tokenizer, 2048, 1, train.TRAIN_SEED_OFFSET + 5)[0]
    keys = train.queried_keys(sample)
    assert len(keys) == 4 and all(f"for {key} is: {value}." in sample["input"]
                                  for key, value in zip(keys, sample["outputs"], strict=True))
    tokens, answers, *_ = train.ruler_sequence(tokenizer, "niah_multiquery", 2048, seed=5, keyed=True)
    written = tokenizer.decode([t for t, a in zip(tokens, answers, strict=True) if a][:-1])
    assert written.strip() == ", ".join(f"{key} is: {value}" for key, value in zip(keys, sample["outputs"],
                                                                                     strict=True)) + "."
    assert ruler.TASKS["niah_multiquery"].score_sample(written, sample) == 1.0
    assert tokens[: len(tokens) - len(written)] == train.ruler_sequence(tokenizer, "niah_multiquery", 2048, 5)[0][
        : len(tokens) - len(written)]
    for task in ("niah_multivalue", "niah_single_1"):
        assert train.ruler_sequence(tokenizer, task, 1024, 3, keyed=True) == train.ruler_sequence(
            tokenizer, task, 1024, 3)


def test_keyed_list_recall_names_the_keys_of_questions_for_several(tokenizer):
    """With keyed answers a list-recall question for several keys lists each key's values after it, each value
    stated by a needle of that key; questions for one key stay plain lists."""
    keyed_spans = 0
    for seed in range(12):
        tokens, answers, *_ = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0, keyed=True)
        stated = tokenizer.decode([t for t, a in zip(tokens, answers, strict=True) if not a])
        spans, current = [], []
        for token, is_answer in zip(tokens, answers, strict=True):
            if is_answer and token != tokenizer.eos_token_id:
                current.append(token)
            elif current:
                spans.append(tokenizer.decode(current).strip().rstrip("."))
                current = []
        for span in spans:
            if " is: " not in span:
                continue
            keyed_spans += 1
            for entry in span.split(" is: ")[1:]:
                value = entry.split(", ")[0]
                assert f"is: {value}." in stated, f"{value} was not stated by a needle"
    assert keyed_spans > 0


def test_collate_and_loss_count_only_real_targets():
    sequences = [train.Sequence([5, 6, 7, 8], [False, False, True, True], {}, {}),
                 train.Sequence([5, 6], [False, True], {}, {})]
    batch = train.collate(sequences, pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8], [5, 6, 0, 0]]
    assert batch.kind.tolist() == [[0, 1, 3, 2], [0, 3, 0, 0]]  # 3: an answer's first token
    assert batch.alternative_positions.shape == (0, 2)
    logits = torch.full((2, 4, 10), -10.0)
    for row, tokens in enumerate(batch.input_ids.tolist()):
        for position in range(3):
            logits[row, position, tokens[position + 1]] = 10.0  # right on every target, pads included
    logits[0, 2, 8] = -10.0  # wrong on the last answer token of row 0
    loss, metrics = train.probe_loss(logits, batch)
    assert metrics["answer_accuracy"] == pytest.approx(2 / 3)
    assert metrics["first_accuracy"] == 1.0
    assert metrics["answer_exact"] == pytest.approx(0.5)
    # --first-weight adds the first tokens' loss again, weighted; here they are right, so it adds little.
    weighted, _ = train.probe_loss(logits, batch, first_weight=2.0)
    assert weighted.item() == pytest.approx(loss.item(), abs=1e-4)
    logits[1, 0, 6] = -10.0  # now wrong on the first answer token of row 1
    loss, metrics = train.probe_loss(logits, batch)
    weighted, _ = train.probe_loss(logits, batch, first_weight=2.0)
    assert metrics["first_accuracy"] == 0.5
    first_loss = (F.cross_entropy(logits[0, 1], batch.input_ids[0, 2])
                  + F.cross_entropy(logits[1, 0], batch.input_ids[1, 1])) / 2
    assert weighted.item() == pytest.approx(loss.item() + 2.0 * first_loss.item(), rel=1e-5)


def test_answer_spans_are_the_runs_of_answer_tokens():
    assert train.answer_spans([False, True, True, False, True]) == [(1, 3), (4, 5)]
    assert train.answer_spans([False, False]) == []


def test_any_order_alternatives_accept_every_value_not_written_yet(tokenizer):
    values = ["7144011", "7244011", "2548615"]
    answer = tokenizer(" " + ", ".join(values) + ".")["input_ids"]
    ids = tokenizer.convert_tokens_to_ids
    alternatives = train.any_order_alternatives(tokenizer, answer, [values], offset=100)
    # " 7144011" starts the answer: 7 or 2 first; after the 7, ##1 or ##2 (7144011 or 7244011); then only one way.
    assert alternatives == {100: sorted(ids(["7", "2"])), 101: sorted(ids(["##1", "##2"])),
                            108: sorted(ids(["7", "2"]))}
    # Two groups (two keys asked): a value of the second key is never right in the first key's list.
    groups = [["7144011", "2548615"], ["3000000"]]
    answer = tokenizer(" " + ", ".join(v for group in groups for v in group) + ".")["input_ids"]
    assert train.any_order_alternatives(tokenizer, answer, groups, offset=0) == {0: sorted(ids(["7", "2"]))}
    with pytest.raises(ValueError, match="not written"):
        train.any_order_alternatives(tokenizer, answer, [["1234567"]], offset=0)


@pytest.mark.parametrize("seed", range(4))
def test_list_alternatives_are_answer_positions_that_hold_one_of_their_tokens(tokenizer, seed):
    tokens, answers, alternatives, key_alternatives = train.recall_sequence(tokenizer, 2000, seed=seed,
                                                                            list_share=1.0)
    for position, right in (alternatives | key_alternatives).items():
        assert answers[position] and tokens[position] in right and len(right) > 1
    for position, right in alternatives.items():  # any order of the keys allows at least any order of a key's values
        assert set(right) <= set(key_alternatives.get(position, right))
    multivalue = train.ruler_sequence(tokenizer, "niah_multivalue", 2048, seed=seed)
    assert multivalue.alternatives  # four values of one key: the first one can be any of them
    assert not multivalue.key_alternatives  # one key asked
    multiquery = train.ruler_sequence(tokenizer, "niah_multiquery", 2048, seed=seed)
    assert not multiquery.alternatives and multiquery.key_alternatives
    assert not train.ruler_sequence(tokenizer, "niah_multiquery", 2048, seed=seed, keyed=True).key_alternatives


def test_key_alternatives_accept_every_asked_value_not_written_yet(tokenizer):
    """niah_multiquery in any order of the keys: at each value's first token, the first tokens of every asked value
    not written yet are right, and only those."""
    sequence = train.ruler_sequence(tokenizer, "niah_multiquery", 2048, seed=3)
    start = sequence.answers.index(True)
    values = tokenizer.decode(sequence.tokens[start:-1]).strip(" .").split(", ")
    assert len(values) == 4
    first_ids = [tokenizer(value)["input_ids"][0] for value in values]
    value_starts = [position for position in range(start, len(sequence.tokens))
                    if tokenizer.convert_ids_to_tokens(sequence.tokens[position]) in
                    tokenizer.convert_ids_to_tokens(first_ids) and not
                    tokenizer.convert_ids_to_tokens(sequence.tokens[position]).startswith("##")]
    assert len(value_starts) == 4
    for j, position in enumerate(value_starts):
        expected = sorted(set(first_ids[j:]))
        assert sequence.key_alternatives.get(position, [sequence.tokens[position]]) == expected
    batch = train.collate([sequence], pad_id=0, any_key_order=True)
    assert len(batch.alternative_positions) == len(sequence.key_alternatives)
    assert not len(train.collate([sequence], pad_id=0, any_order=True).alternative_positions)


@pytest.mark.parametrize("other", [["--keyed-answers"], ["--key-order", "document"]])
def test_any_key_order_excludes_keyed_answers_and_a_key_order(tmp_path, capsys, other):
    with pytest.raises(SystemExit) as error:
        train.main(["--any-key-order", *other, "--out", str(tmp_path / "probe")])
    assert error.value.code == 2 and "Give one of them" in capsys.readouterr().err


def test_set_loss_counts_every_right_token():
    """A target with alternatives costs -log of the probability on all of them, and any of them is right."""
    sequence = train.Sequence([5, 6, 7], [False, True, True], {1: [6, 9]}, {})
    logits = torch.zeros(1, 3, 10)
    logits[0, 0, 9] = 3.0  # the first answer: the alternative 9, not the written 6
    logits[0, 1, 7] = 3.0
    plain, plain_metrics = train.probe_loss(logits, train.collate([sequence], pad_id=0))
    loss, metrics = train.probe_loss(logits, train.collate([sequence], pad_id=0, any_order=True))
    assert plain_metrics["answer_accuracy"] == 0.5 and metrics["answer_accuracy"] == 1.0
    probabilities = logits[0, 0].softmax(0)
    expected_first = -torch.log(probabilities[6] + probabilities[9])
    second = -logits[0, 1].log_softmax(0)[7]
    assert metrics["answer_loss"] == pytest.approx(((expected_first + second) / 2).item(), rel=1e-5)
    assert loss.item() < plain.item()


def test_train_runs_and_saves_a_loadable_checkpoint(tmp_path):
    settings = train.TrainSettings(
        arch="qwen3", hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16, stages=[640, 1024],
        tokens_per_step=2048, max_steps=3, time_budget_s=120, workers=1, stage_max_fraction=0.0,
        retrieval_accuracy=0.0, list_recall=1.0, any_order=True,
    )
    summary = train.train(settings, tmp_path / "probe", device="cpu", log=lambda line: None)
    assert summary["steps"] == 3 and summary["final_stage_length"] == 1024
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "probe")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "probe")
    assert model.config.model_type == "qwen3" and len(tokenizer) == model.config.vocab_size
    assert json.loads((tmp_path / "probe" / "training.json").read_text())["steps"] == 3


def test_glm_probe_config_is_mla(tokenizer):
    settings = train.TrainSettings(arch="glm4_moe_lite", hidden_size=64, num_layers=2, num_heads=4, head_dim=16)
    config = train.model_config(settings, tokenizer)
    assert config.model_type == "glm4_moe_lite"
    assert (config.kv_lora_rank, config.qk_rope_head_dim) == (32, 16)


def test_a_stage_does_not_end_by_time_before_retrieval_works(tmp_path):
    settings = train.TrainSettings(
        arch="qwen3", hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16, stages=[640, 1024],
        tokens_per_step=2048, max_steps=3, time_budget_s=120, workers=1, stage_max_fraction=0.0,
        retrieval_accuracy=0.99,
    )
    summary = train.train(settings, tmp_path / "probe", device="cpu", log=lambda line: None)
    assert summary["final_stage_length"] == 640


def test_shipped_recipe_trains_its_phases_each_continuing_the_last(tmp_path):
    """--shipped runs SHIPPED_RECIPES's phases in turn; the checkpoint's training.json is the last phase's, with the
    earlier ones under previous_phases."""
    out = tmp_path / "probe"
    argv = ["--arch", "qwen3", "--shipped", "--out", str(out), "--device", "cpu", "--hidden-size", "32",
            "--num-layers", "1", "--num-heads", "2", "--num-kv-heads", "1", "--head-dim", "16",
            "--tokens-per-step", "2048", "--max-steps", "1", "--workers", "1", "--keyed-answers"]
    assert train.main(argv) == 0
    summary = json.loads((out / "training.json").read_text())
    phases = train.SHIPPED_RECIPES["qwen3"]
    assert len(phases) == 2 and len(summary["previous_phases"]) == 1
    first, last = summary["previous_phases"][0]["settings"], summary["settings"]
    assert first["init"] is None and first["time_budget_s"] == phases[0]["time_budget_s"]
    assert last["init"] == str(out) and last["list_recall"] == phases[1]["list_recall"] > 0
    assert last["stages"] == phases[1]["stages"] and last["hidden_size"] == 32
    assert first["keyed_answers"] and last["keyed_answers"]  # a flag the phases do not set holds for every phase
    assert summary["steps"] == 1 and summary["final_stage_length"] == phases[1]["stages"][0]


@pytest.mark.parametrize("seed", range(3))
def test_answer_frame_restates_one_value_where_rulers_question_puts_its_key(tokenizer, seed):
    """--answer-frame: restated one-value needles in the body read as RULER's answer, the key five words before a
    value that a needle of that key stated earlier; without it only the questions' answers do."""
    frame = list(tokenizer(" mentioned in the provided text is")["input_ids"])

    def restated_in_answer_frame(sequence) -> list[str]:
        found = []
        for start, end in train.answer_spans(sequence.answers):
            framed = sequence.tokens[start - len(frame) : start] == frame
            if framed and sequence.tokens[end - 1] != tokenizer.eos_token_id:  # not a question's answer
                found.append(tokenizer.decode(sequence.tokens[start - len(frame) - 40 : end]))
        return found

    framed = train.recall_sequence(tokenizer, 3000, seed=seed, answer_frame=1.0)
    assert not restated_in_answer_frame(train.recall_sequence(tokenizer, 3000, seed=seed))
    restatements = restated_in_answer_frame(framed)
    assert restatements
    text = tokenizer.decode(framed.tokens)
    for restatement in restatements:
        key, value = restatement.split(" for ")[-1].split(" mentioned in the provided text is ")
        assert f"for {key} is: {value}" in text, restatement


def test_the_first_token_gate_holds_a_fresh_probe_at_short_prompts(tmp_path):
    """With --gate-metric first_accuracy a stage's end waits for the first answer tokens: a fresh probe, which
    gets few of them right, stays at the first stage after its time share and 50 steps are spent."""
    settings = train.TrainSettings(
        arch="qwen3", hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16, stages=[640, 1024],
        tokens_per_step=640, max_steps=52, time_budget_s=600, workers=1, stage_max_fraction=0.0,
        retrieval_accuracy=0.5, advance_accuracy=1.1, gate_metric="first_accuracy",
    )
    summary = train.train(settings, tmp_path / "gated", device="cpu", log=lambda line: None)
    assert summary["final_stage_length"] == 640
    assert max(record["first_accuracy"] for record in summary["history"]) < 0.5


def _tiny_probe(arch: str, tokenizer, layers: int = 2):
    torch.manual_seed(0)
    settings = train.TrainSettings(arch=arch, hidden_size=32, num_layers=layers, num_heads=2, num_kv_heads=1,
                                   head_dim=16)
    return AutoModelForCausalLM.from_config(train.model_config(settings, tokenizer)).eval()


@pytest.mark.parametrize("arch", ["qwen3", "glm4_moe_lite"])
def test_a_grown_model_computes_what_the_model_does(tokenizer, arch):
    """Each copy follows its layer with the layer's weights but zero output projections (attention, MLP, every
    expert): the same logits, and the copies' other weights are their layers'."""
    model = _tiny_probe(arch, tokenizer, layers=3)
    grown = train.grown_model(model, [0, 2]).eval()
    assert grown.config.num_hidden_layers == 5 and len(grown.model.layers) == 5
    if arch == "glm4_moe_lite":  # the per-layer MLP kinds follow their layers: dense first, then sparse
        assert model.config.mlp_layer_types == ["dense", "sparse", "sparse"]
        assert grown.config.mlp_layer_types == ["dense", "dense", "sparse", "sparse", "sparse"]
    input_ids = torch.randint(3, len(tokenizer), (2, 37))
    with torch.no_grad():
        torch.testing.assert_close(grown(input_ids).logits, model(input_ids).logits, rtol=1e-5, atol=1e-5)
    copy, source = dict(grown.model.layers[4].named_parameters()), dict(model.model.layers[2].named_parameters())
    assert copy.keys() == source.keys()
    for name, weight in copy.items():
        if any(part in name for part in train.OUTPUT_PROJECTIONS):
            assert not weight.any() and source[name].any(), name
        else:
            assert torch.equal(weight, source[name]), name


def test_grow_after_names_distinct_layers_of_the_model(tokenizer):
    model = _tiny_probe("qwen3", tokenizer)
    for bad in ([], [2], [-1], [0, 0]):
        with pytest.raises(ValueError, match="grow_after must name distinct layers of the 2-layer model"):
            train.grown_model(model, bad)


def test_training_grows_the_init_checkpoint(tmp_path, tokenizer):
    """--grow-after trains the grown --init and saves the deeper checkpoint, the added layers at their own rate (here
    0: they stay as grown while the others train); without --init it is a usage error."""
    init = _tiny_probe("qwen3", tokenizer)
    init.save_pretrained(tmp_path / "init")
    tokenizer.save_pretrained(tmp_path / "init")
    out = tmp_path / "grown"
    argv = ["--arch", "qwen3", "--init", str(tmp_path / "init"), "--grow-after", "0,1", "--grown-rate-scale", "0",
            "--learning-rate", "1", "--out", str(out), "--device", "cpu", "--stages", "640", "--tokens-per-step",
            "1024", "--max-steps", "1", "--workers", "1"]
    assert train.main(argv) == 0
    trained = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    assert trained.config.num_hidden_layers == 4
    expected = train.grown_model(init.to(torch.bfloat16), [0, 1]).float()
    for index in range(4):
        for name, weight in trained.model.layers[index].named_parameters():
            grown = dict(expected.model.layers[index].named_parameters())[name]
            assert torch.equal(weight, grown) == (index in (1, 3)), (index, name)
    settings = json.loads((out / "training.json").read_text())["settings"]
    assert settings["grow_after"] == [0, 1] and settings["grown_rate_scale"] == 0
    with pytest.raises(SystemExit) as error:
        train.main(["--grow-after", "0", "--out", str(out)])
    assert error.value.code == 2


def test_phases_grow_the_init_checkpoint_once(tmp_path, tokenizer):
    """Only the first phase grows --init; the phases after it continue the grown checkpoint as it is."""
    _tiny_probe("qwen3", tokenizer).save_pretrained(tmp_path / "init")
    tokenizer.save_pretrained(tmp_path / "init")
    settings = train.TrainSettings(arch="qwen3", init=str(tmp_path / "init"), grow_after=[0, 1], stages=[640],
                                   tokens_per_step=1024, max_steps=1, workers=1)
    summary = train.train_phases(settings, [{}, {}], tmp_path / "grown", device="cpu", log=lambda line: None)
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "grown").config.num_hidden_layers == 4
    assert summary["previous_phases"][0]["settings"]["grow_after"] == [0, 1]
    assert summary["settings"]["grow_after"] == []


def test_hyphen_nouns_make_a_word_key_two_tokens(tokenizer):
    """build_word_tokenizer(hyphen_nouns=True): a RULER word key is its adjective and one '##-noun' token (nine
    tokens before); every token of the plain tokenizer keeps its id, and text decodes as the plain tokenizer's."""
    hyphenated = build_word_tokenizer(hyphen_nouns=True)
    assert len(hyphenated) == len(tokenizer) + len(set(NOUNS))
    assert vocabulary(hyphenated)[:len(tokenizer)] == vocabulary(tokenizer)
    assert hyphenated.tokenize("dry-picture") == ["dry", "##-picture"]
    assert len(tokenizer.tokenize("dry-picture")) == 9
    sample = ruler.TASKS["niah_multiquery"].make_samples(hyphenated, 1024, 1, 0)[0]
    encoded = hyphenated(sample["input"])["input_ids"]
    plain = tokenizer(sample["input"])["input_ids"]
    assert hyphenated.decode(encoded) == tokenizer.decode(plain) and len(encoded) < len(plain)


def test_digit_groups_make_three_digits_one_token(tokenizer):
    """build_word_tokenizer(digit_groups=True): a run of three digits is one token, so the first token of a RULER
    value is one of 900; every token of the tokenizer without it keeps its id, and text decodes as before. With
    --hyphen-nouns too, the digit groups come after the hyphenated nouns."""
    grouped = build_word_tokenizer(digit_groups=True)
    assert len(grouped) == len(tokenizer) + 2000
    assert vocabulary(grouped)[:len(tokenizer)] == vocabulary(tokenizer)
    assert grouped.tokenize("is: 3725247.") == ["is", "##:", "372", "##524", "##7", "##."]
    sample = ruler.TASKS["niah_multivalue"].make_samples(grouped, 1024, 1, 0)[0]
    encoded = grouped(sample["input"])["input_ids"]
    plain = tokenizer(sample["input"])["input_ids"]
    assert grouped.decode(encoded) == tokenizer.decode(plain) and len(encoded) < len(plain)
    both = build_word_tokenizer(hyphen_nouns=True, digit_groups=True)
    hyphenated = build_word_tokenizer(hyphen_nouns=True)
    assert vocabulary(both)[:len(hyphenated)] == vocabulary(hyphenated)
    assert both.tokenize("dry-picture 3725247") == ["dry", "##-picture", "372", "##524", "##7"]


@pytest.mark.parametrize(("options", "added", "starts_as"), [
    ({"hyphen_nouns": True}, "##-picture", ["picture"]),
    ({"digit_groups": True}, "372", ["3", "##7", "##2"]),
    ({"digit_groups": True}, "##524", ["##5", "##2", "##4"]),
])
def test_with_vocabulary_starts_each_added_token_from_its_starting_tokens(tokenizer, options, added, starts_as):
    """--hyphen-nouns or --digit-groups with --init: the checkpoint's vocabulary grows to the tokenizer's, each added
    row (input and output) its starting tokens' rows weighted 1, 1/2, 1/4 over the weights' norm (digit groups of the
    same digits in another order start apart), the other rows and the logits on the old tokens unchanged; a
    checkpoint whose tokens are not the first of the tokenizer's does not continue with it."""
    grown_tokenizer = build_word_tokenizer(**options)
    assert train.starting_tokens(added) == starts_as
    model = _tiny_probe("qwen3", tokenizer)
    input_ids = torch.randint(3, len(tokenizer), (2, 29))
    with torch.no_grad():
        before = model(input_ids).logits
    train.with_vocabulary(model, grown_tokenizer, vocabulary(tokenizer))
    assert model.config.vocab_size == len(grown_tokenizer)
    if options.get("digit_groups"):
        rows = model.get_input_embeddings().weight[grown_tokenizer.convert_tokens_to_ids(["868", "886"])]
        assert not torch.allclose(rows[0], rows[1])
    embeddings, output = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    added_id = grown_tokenizer.convert_tokens_to_ids(added)
    sources = tokenizer.convert_tokens_to_ids(starts_as)
    weights = torch.tensor([1.0, 0.5, 0.25][:len(sources)])
    expected = (weights[:, None] * embeddings[sources]).sum(0) / weights.norm()
    torch.testing.assert_close(embeddings[added_id], expected)
    torch.testing.assert_close(output[added_id], expected)
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids).logits[..., :len(tokenizer)], before)
    with pytest.raises(ValueError, match="tokenizer options it was trained with"):
        train.with_vocabulary(model, tokenizer, vocabulary(grown_tokenizer))


def test_with_vocabulary_refuses_a_tokenizer_that_renumbers_the_checkpoints_tokens(tokenizer):
    """A checkpoint trained with --digit-groups continued with --hyphen-nouns added: the tokens after the plain ones
    are hyphenated nouns where the checkpoint has digit groups, so the growth is refused rather than giving old rows
    to other tokens."""
    grouped = build_word_tokenizer(digit_groups=True)
    model = _tiny_probe("qwen3", tokenizer)
    train.with_vocabulary(model, grouped, vocabulary(tokenizer))
    with pytest.raises(ValueError, match="not the first tokens"):
        train.with_vocabulary(model, build_word_tokenizer(hyphen_nouns=True, digit_groups=True), vocabulary(grouped))


def test_init_without_its_tokenizer_is_refused(tmp_path, tokenizer):
    _tiny_probe("qwen3", tokenizer).save_pretrained(tmp_path / "init")
    settings = train.TrainSettings(arch="qwen3", init=str(tmp_path / "init"), stages=[640], tokens_per_step=1024,
                                   max_steps=1, workers=1)
    with pytest.raises(ValueError, match="has no tokenizer.json beside its weights"):
        train.train(settings, tmp_path / "out", device="cpu", log=lambda line: None)


def test_training_with_hyphen_nouns_saves_the_grown_vocabulary_and_its_tokenizer(tmp_path, tokenizer):
    _tiny_probe("qwen3", tokenizer).save_pretrained(tmp_path / "init")
    tokenizer.save_pretrained(tmp_path / "init")
    out = tmp_path / "hyphenated"
    argv = ["--arch", "qwen3", "--init", str(tmp_path / "init"), "--hyphen-nouns", "--out", str(out), "--device",
            "cpu", "--stages", "640", "--tokens-per-step", "1024", "--max-steps", "1", "--workers", "1"]
    assert train.main(argv) == 0
    saved = AutoTokenizer.from_pretrained(out)
    assert saved.tokenize("dry-picture") == ["dry", "##-picture"]
    assert AutoModelForCausalLM.from_pretrained(out).config.vocab_size == len(saved)


def right_first_tokens(sequence: train.Sequence, tokenizer, start: int, end: int) -> list[tuple[list[int], list[int]]]:
    """For each value of the list written in tokens[start:end] (" V1, V2."): (the first tokens of it and of every
    value after it, the tokens the sequence counts as right at its first token)."""
    values = tokenizer.decode([t for t in sequence.tokens[start:end] if t != tokenizer.eos_token_id]).strip(" .")
    encoded = [tokenizer(value)["input_ids"] for value in values.split(", ")]
    rights, cursor = [], start
    alternatives = sequence.alternatives | sequence.key_alternatives
    for j, value in enumerate(encoded):
        position = next(i for i in range(cursor, end) if sequence.tokens[i : i + len(value)] == value)
        rights.append((sorted({other[0] for other in encoded[j:]}),
                       alternatives.get(position, [sequence.tokens[position]])))
        cursor = position + len(value)
    return rights


@pytest.mark.parametrize("task", ["niah_multivalue", "niah_multiquery"])
def test_shuffled_answers_come_in_drawn_orders_each_right_in_any(tokenizer, task):
    """--key-order shuffled: RULER's several values in an order drawn per sequence, not the document's or the
    question's, and at each value's first token every value not written yet is right."""
    orders = set()
    for seed in range(6):
        sample = ruler.TASKS[task].make_samples(tokenizer, 2048, 1, train.TRAIN_SEED_OFFSET + seed)[0]
        sequence = train.ruler_sequence(tokenizer, task, 2048, seed=seed, key_order="shuffled")
        start, end = train.answer_spans(sequence.answers)[0]
        written = tokenizer.decode(sequence.tokens[start : end - 1]).strip(" .").split(", ")
        assert sorted(written) == sorted(sample["outputs"])
        orders.add(tuple(written.index(value) for value in in_order(task, sample)))
        for expected, right in right_first_tokens(sequence, tokenizer, start, end):
            assert right == expected
    assert len(orders) > 2


def in_order(task: str, sample: dict) -> list[str]:
    """The values in the order the other key orders start from: the needles' (one key) or the question's."""
    return sorted(sample["outputs"], key=sample["input"].index) if task == "niah_multivalue" else sample["outputs"]


def test_shuffled_list_recall_writes_every_list_in_a_drawn_order_right_in_any(tokenizer):
    """recall_sequence with key_order="shuffled": restated lists and answers list the values stated for their keys,
    not always in the needles' order, and every value not written yet is right at each value's first token."""
    lists = out_of_order = 0
    for seed in range(8):
        sequence = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0, key_order="shuffled")
        text = tokenizer.decode(sequence.tokens)
        needles = [value for _, value in re.findall(r"One of the special magic \w+ for (\S+) is: (\S+?)\.", text)]
        for start, end in train.answer_spans(sequence.answers):
            values = tokenizer.decode([t for t in sequence.tokens[start:end] if t != tokenizer.eos_token_id])
            values = values.strip(" .").split(", ")
            if len(values) < 2:
                continue
            lists += 1
            places = [needles.index(value) for value in values]
            out_of_order += places != sorted(places)
            for expected, right in right_first_tokens(sequence, tokenizer, start, end):
                assert right == expected
    assert lists > 10 and out_of_order > lists // 4


@pytest.mark.parametrize("key_order", train.LIST_ORDERS)
def test_list_orders_exclude_keyed_answers(tmp_path, capsys, key_order):
    with pytest.raises(SystemExit) as error:
        train.main(["--key-order", key_order, "--keyed-answers", "--out", str(tmp_path / "probe")])
    assert error.value.code == 2 and "Give one of them" in capsys.readouterr().err


def test_shuffled_answers_imply_any_order_and_sorted_ones_do_not():
    settings = train.TrainSettings(key_order="shuffled")
    assert settings.any_order and settings.any_key_order
    settings = train.TrainSettings(key_order="sorted")
    assert not settings.any_order and not settings.any_key_order


@pytest.mark.parametrize("task", ["niah_multivalue", "niah_multiquery"])
def test_sorted_answers_list_rulers_values_in_ascending_order(tokenizer, task):
    reordered = 0
    for seed in range(4):
        sample = ruler.TASKS[task].make_samples(tokenizer, 2048, 1, train.TRAIN_SEED_OFFSET + seed)[0]
        sequence = train.ruler_sequence(tokenizer, task, 2048, seed=seed, key_order="sorted")
        start, end = train.answer_spans(sequence.answers)[0]
        written = tokenizer.decode(sequence.tokens[start : end - 1]).strip(" .").split(", ")
        assert written == sorted(sample["outputs"])
        reordered += written != in_order(task, sample)
    assert reordered


def test_sorted_list_recall_writes_every_list_in_ascending_order(tokenizer):
    """recall_sequence with key_order="sorted": every restated list and answer is the same values as in the
    needles' order, ascending; the rest of the sequence is as drawn with the needles' order."""
    lists = reordered = 0
    for seed in range(8):
        plain = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0)
        ordered = train.recall_sequence(tokenizer, 2000, seed=seed, list_share=1.0, key_order="sorted")
        assert plain.answers == ordered.answers
        for start, end in train.answer_spans(plain.answers):
            plain_values = tokenizer.decode([t for t in plain.tokens[start:end] if t != tokenizer.eos_token_id])
            ordered_values = tokenizer.decode([t for t in ordered.tokens[start:end] if t != tokenizer.eos_token_id])
            plain_values, ordered_values = (text.strip(" .").split(", ") for text in (plain_values, ordered_values))
            assert ordered_values == sorted(plain_values)
            lists += len(plain_values) > 1
            reordered += plain_values != ordered_values
    assert lists > 10 and reordered > lists // 4


def test_repeated_kv_heads_compute_what_the_model_does_and_reload(tmp_path, tokenizer):
    """Two KV heads each repeated twice (4 KV heads for 4 query heads): the same logits, saved and loaded as a
    checkpoint of 4 KV heads; a repeat that does not divide the query heads, or an MLA model, is refused."""
    torch.manual_seed(0)
    settings = train.TrainSettings(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=16)
    model = AutoModelForCausalLM.from_config(train.model_config(settings, tokenizer)).eval()
    input_ids = torch.randint(3, len(tokenizer), (2, 37))
    with torch.no_grad():
        before = model(input_ids).logits
        train.with_repeated_kv_heads(model, 2)
        torch.testing.assert_close(model(input_ids).logits, before, rtol=1e-5, atol=1e-5)
    model.save_pretrained(tmp_path / "repeated")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "repeated").eval()
    assert reloaded.config.num_key_value_heads == 4
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids).logits, before, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="must divide"):
        train.with_repeated_kv_heads(model, 3)
    with pytest.raises(ValueError, match="qwen3"):
        train.with_repeated_kv_heads(_tiny_probe("glm4_moe_lite", tokenizer), 2)


@pytest.mark.parametrize("argv, message", [(["--repeat-kv-heads", "0", "--init", "ckpt"], "at least 1"),
                                           (["--repeat-kv-heads", "2"], "give --init")])
def test_repeat_kv_heads_needs_a_positive_count_and_a_checkpoint(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as error:
        train.main([*argv, "--out", str(tmp_path / "probe")])
    assert error.value.code == 2 and message in capsys.readouterr().err
