"""Needle trace: where the needle's tokens are, and the two stage recalls, against hand-made selections."""

from __future__ import annotations

import pytest
import torch

from asynctls_hf.eval import ruler
from asynctls_hf.eval.methods import method_config
from asynctls_hf.eval.needle_trace import main, needle_positions, stage_recalls, trace_needle


def test_needle_positions_find_the_stated_value(word_tokenizer):
    sample = ruler.TASKS["niah_single_1"].make_samples(word_tokenizer, 700, 1, seed=3)[0]
    prompt_ids = word_tokenizer(sample["input"])["input_ids"]
    positions = needle_positions(word_tokenizer, prompt_ids, sample["outputs"][0])
    assert word_tokenizer.decode([prompt_ids[p] for p in positions]) == sample["outputs"][0]
    with pytest.raises(ValueError, match="do not appear in the prompt"):
        needle_positions(word_tokenizer, prompt_ids, "9999999999")


def test_stage_recalls_by_hand():
    needle = torch.tensor([10, 11, 20])  # blocks 1, 1, 2 with block_size 8 -> 10 // 8 = 1, 20 // 8 = 2
    kept_blocks = torch.tensor([[[1, 5], [2, 1]]])  # group 0 keeps block 1; group 1 keeps blocks 2 and 1
    kept_valid = torch.tensor([[[True, True], [True, False]]])  # group 1's block 1 is a filler pick
    slots = torch.tensor([[[10, 3, 20], [20, 11, 0]]])
    valid = torch.tensor([[[True, True, False], [True, True, True]]])
    block, token = stage_recalls(needle, 8, kept_blocks, kept_valid, slots, valid)
    assert block == pytest.approx((2 + 1) / 6)  # group 0: tokens 10, 11; group 1: token 20
    assert token == pytest.approx((1 + 2) / 6)  # group 0: 10 (20 invalid); group 1: 20, 11
    assert stage_recalls(needle, 8, None, None, slots, valid) == (None, pytest.approx(0.5))


def test_trace_on_a_tiny_model(tiny_checkpoint, word_tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_checkpoint).eval()
    sample = ruler.TASKS["niah_single_1"].make_samples(word_tokenizer, 900, 1, seed=1)[0]
    base = dict(block_size=16, top_blocks=4, sink_tokens=4, local_tokens=16)
    every_block = method_config("double-sparsity", 128, 16, **base)  # keeps every block: block recall 1
    trace = trace_needle(model, word_tokenizer, sample["input"], sample["outputs"][0], every_block, steps=3)
    assert trace["steps"] == 3 and trace["block"] == [1.0, 1.0]
    assert all(0.0 <= token <= 1.0 for token in trace["token"])
    streaming = method_config("streaming", 128, 16, **base)  # no block stage, and the needle is far from the ends
    trace = trace_needle(model, word_tokenizer, sample["input"], sample["outputs"][0], streaming, steps=2)
    assert trace["block"] == [None, None] and trace["token"] == [0.0, 0.0]
    argv = ["--model", tiny_checkpoint, "--task", "niah_single_1", "--context-lengths", "900", "--budgets", "64",
            "--samples", "1", "--steps", "2", "--block-size", "16", "--top-blocks", "2", "--sink-tokens", "4",
            "--local-tokens", "16", "--device", "cpu", "--out", str(tmp_path)]
    assert main(argv) == 0
    table = next(tmp_path.glob("*/needle_trace_niah_single_1.md")).read_text()
    assert "| 900 | asynctls @ 64 |" in table and "| 900 | quest @ 64 |" in table
