"""The static decode path (a resident layer with a free slot writes the decode token at a slot held on the device,
the step's metadata computed on the device: what a CUDA graph captures) against the dynamic one (host-int appends),
on the CPU."""

from __future__ import annotations

import pytest
import torch
from helpers import CACHE_KWARG, assert_same_scores_exactly, greedy, left_padded_batch, tiny_glm4_moe_lite, tiny_qwen3

import asynctls_hf
from asynctls_hf import AsyncTLSCache
from asynctls_hf.cache import AsyncTLSLayer

# 5 * 16 token slots hold the 36 picks and their successors (offloaded by tokens, lag 1).
SPARSE = dict(token_budget=48, sink_tokens=4, local_tokens=8, block_size=16, top_blocks=5)
LENGTHS = [150, 131, 97]
STEPS = 40  # crosses two block boundaries


def _generate(model, monkeypatch, static: bool):
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    cache = AsyncTLSCache.for_model(model, max_length=input_ids.shape[1] + STEPS)
    with monkeypatch.context() as patch:
        if not static:
            patch.setattr(AsyncTLSLayer, "can_append_in_place", lambda layer, row_start: False)
        output = greedy(model, input_ids, attention_mask, STEPS, **{CACHE_KWARG: cache})
    return output, cache


@pytest.mark.parametrize("make_model", [tiny_qwen3, tiny_glm4_moe_lite])
@pytest.mark.parametrize("settings", [dict(label_bits=4), dict(label_bits=16), dict(offload=True, prefetch_lag=0),
                                      dict(offload=True, prefetch_lag=1),
                                      dict(offload=True, prefetch_lag=1, offload_granularity="token")],
                         ids=["4bit", "16bit", "lag0", "lag1", "tokens-lag1"])
def test_static_decode_path_equals_dynamic_one(make_model, settings, monkeypatch):
    model = make_model()
    with asynctls_hf.patched(model, **SPARSE, **settings):
        dynamic, dynamic_cache = _generate(model, monkeypatch, static=False)
        static, static_cache = _generate(model, monkeypatch, static=True)
    assert_same_scores_exactly(dynamic, static)
    assert static_cache.stats()["sparse_layer_steps"] > 0
    for static_layer, dynamic_layer in zip(static_cache.layers, dynamic_cache.layers, strict=True):
        assert static_layer.length == dynamic_layer.length
        for name, tensor in static_layer._storage().items():
            assert torch.equal(tensor, dynamic_layer._storage()[name]), name
        if static_layer.offloaded is not None:
            for name in ("token_keys", "token_values"):
                stored = getattr(static_layer.offloaded.store, name)[:, :, : static_layer.length]
                assert torch.equal(stored, getattr(dynamic_layer.offloaded.store, name)[:, :, : static_layer.length])
            # The window (sinks and ring) and which block each slot holds; a slot's tail past a partial block's
            # last token is whatever the store's unwritten memory held, in either cache.
            static_engine, dynamic_engine = static_layer.offloaded.engine, dynamic_layer.offloaded.engine
            window = static_engine.window_tokens
            assert torch.equal(static_engine.key_buffer[:, :, :window], dynamic_engine.key_buffer[:, :, :window])
            assert torch.equal(static_engine.resident.slot_block, dynamic_engine.resident.slot_block)
            assert torch.equal(static_engine.resident.block_slot, dynamic_engine.resident.block_slot)


def test_static_index_equals_a_rebuild_from_the_stored_keys(monkeypatch):
    model = tiny_qwen3()
    with asynctls_hf.patched(model, **SPARSE):
        _, cache = _generate(model, monkeypatch, static=True)
    for layer in cache.layers:
        summaries = layer.block_max.clone(), layer.block_min.clone()
        layer.rebuild_index(cache.row_start)
        assert torch.equal(summaries[0], layer.block_max) and torch.equal(summaries[1], layer.block_min)
        codes, scale, zero = layer._labels_of(layer.keys[:, :, : layer.length])
        assert torch.equal(codes, layer.label_codes[:, :, : layer.length])
        assert torch.equal(scale, layer.label_scale[:, :, : layer.length])
        assert torch.equal(zero, layer.label_zero[:, :, : layer.length])


def test_decode_steps_count_in_place_across_stats_resets(monkeypatch):
    """The attended-token sums a captured step adds to are the same tensors before and after reset_stats."""
    model = tiny_qwen3()
    with asynctls_hf.patched(model, **SPARSE):
        _, cache = _generate(model, monkeypatch, static=True)
    sums = dict(cache._attended_sums)
    assert cache.stats()["attended_tokens"] > 0
    cache.reset_stats()
    assert cache.stats()["attended_tokens"] == 0
    assert all(cache._attended_sums[device] is total for device, total in sums.items())


def test_offload_counters_are_zeroed_in_place(monkeypatch):
    """A captured step adds to the offload engines' counters: reset_stats must keep the same tensors."""
    model = tiny_qwen3()
    with asynctls_hf.patched(model, **SPARSE, offload=True):
        _, cache = _generate(model, monkeypatch, static=True)
    engine = cache.layers[0].offloaded.engine
    counters = engine.resident.counters
    assert cache.stats()["h2d_bytes"] > 0
    cache.reset_stats()
    assert cache.stats()["h2d_bytes"] == 0 and engine.stats()["steps"] == 0
    assert engine.resident.counters is counters
