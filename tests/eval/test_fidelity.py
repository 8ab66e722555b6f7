"""Attention recall: the share of full attention's mass on the selected tokens."""

from __future__ import annotations

import math

import pytest
import torch

from asynctls_hf import attention
from asynctls_hf.eval.fidelity import attention_recall, observe_selections, selected_mass
from asynctls_hf.eval.generation import load_model
from asynctls_hf.eval.methods import method_config


def test_selected_mass_on_hand_made_scores():
    query = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # [B=1, NG=1, G=2, Dk=2]
    keys = torch.tensor([[[[0.0, 0.0], [math.log(2), 0.0], [math.log(3), 0.0]]]])  # head 0 weights 1 : 2 : 3
    slots = torch.tensor([[[2, 0, 1]]])
    valid = torch.tensor([[[True, True, False]]])
    every_key = torch.ones(1, 3, dtype=torch.bool)
    assert selected_mass(query, keys, every_key, slots, valid, 1.0)[0, 0].tolist() == pytest.approx([4 / 6, 2 / 3])
    first_is_pad = torch.tensor([[False, True, True]])
    assert selected_mass(query, keys, first_is_pad, slots, valid, 1.0)[0, 0].tolist() == pytest.approx([3 / 5, 1 / 2])
    everything = torch.tensor([[[0, 1, 2]]])
    assert selected_mass(query, keys, every_key, everything, torch.ones(1, 1, 3, dtype=torch.bool), 1.0).allclose(
        torch.ones(1, 1, 2)
    )


def test_observer_is_removed_even_after_an_error():
    original = attention.select_tokens
    with pytest.raises(RuntimeError), observe_selections(lambda *args: None):
        assert attention.select_tokens is not original
        raise RuntimeError("boom")
    assert attention.select_tokens is original


def test_attention_recall_per_layer(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint, device="cpu")
    input_ids = torch.randint(5, 900, (1, 300), generator=torch.Generator().manual_seed(0))
    base = dict(block_size=16, sink_tokens=4, local_tokens=16)
    recalls = {}
    for method in ("streaming", "asynctls", "token-topk"):
        report = attention_recall(model, input_ids, method_config(method, 64, 16, **base), steps=3)
        assert report["steps"] == 3
        assert len(report["per_layer"]) == 2
        assert all(0 < value < 1 for value in report["per_layer"])
        recalls[method] = report["mean"]
    assert recalls["token-topk"] > recalls["streaming"]
    assert attention.select_tokens.__name__ == "select_tokens"
    dense = attention_recall(model, input_ids, method_config("asynctls", 1024, 16, **base), steps=2)
    assert dense == {"per_layer": [None, None], "mean": None, "steps": 0}
