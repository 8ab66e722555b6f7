"""The offloaded cache in the decode path: exact mode equals the resident cache, lag 1 equals a reference of
lagged selection, through generate() with left-padded batches, beam search and crop; statistics.

Runs on the CPU (synchronous transport, pageable host store) in CI; the same checks on a CUDA device, with the
copy stream, pinned memory and the Triton kernels, are in test_offloaded_gpu.py.
"""

from __future__ import annotations

import pytest
import torch
from helpers import (
    CACHE_KWARG,
    assert_same_scores_exactly,
    greedy,
    left_padded_batch,
    returned_cache,
    tiny_glm4_moe_lite,
    tiny_qwen3,
)

import asynctls_hf
from asynctls_hf import attention
from asynctls_hf.offload import CudaStreamTransport, ResidentSet

SPARSE = dict(token_budget=48, sink_tokens=4, local_tokens=8, block_size=16, top_blocks=4)
LENGTHS = [150, 131, 97]


class LaggedSelection:
    """Reference of prefetch_lag=1 on a resident cache: token selection at step t uses the blocks block filtering
    kept at step t-1 (the first sparse step its own), less those the new token's append made stale (the block it
    lands in and any later one)."""

    def __init__(self):
        self.previous: dict[int, torch.Tensor] = {}

    def __call__(self, query, layer, plan, config, *, scaling, on_kept_blocks=None):
        kept_blocks, kept_valid = attention.filter_blocks(query, layer, plan, config)
        wanted = torch.where(kept_valid, kept_blocks, -1)
        previous = self.previous.get(id(layer))
        self.previous[id(layer)] = wanted
        if previous is None:
            blocks = wanted
        else:
            appended_block = (plan.length - 1) // config.block_size
            blocks = torch.where(previous >= appended_block, -1, previous)
        return attention.select_from_blocks(
            query, layer, plan, config, blocks.clamp(min=0), blocks >= 0, plan.fixed_slots, scaling
        )


class LaggedTokenSelection:
    """Reference of prefetch_lag=1 with offload_granularity "token" on a resident cache: token selection at step t
    picks among the tokens of every block kept at step t, and attention keeps those of the picked tokens that a
    set of top_blocks * block_size token slots holds, each step's picks and the prefetch_successors tokens after
    each pick (below the step's candidate bound) added after the step, first in, first out (a ResidentSet, tested
    against the plain policy in tests/offload); the first sparse step keeps every pick."""

    def __init__(self):
        self.select = attention.select_tokens  # the resident selection, before this object replaces it
        self.slots: dict[int, ResidentSet] = {}

    def __call__(self, query, layer, plan, config, *, scaling, on_kept_blocks=None):
        slots, valid = self.select(query, layer, plan, config, scaling=scaling)
        fixed = plan.fixed_slots.shape[1]
        picked = torch.where(valid[..., fixed:], slots[..., fixed:], -1).sort(dim=-1).values
        held = self.slots.get(id(layer))
        if held is None:
            held = self.slots[id(layer)] = ResidentSet(
                *slots.shape[:2], config.top_blocks * config.block_size, plan.length, slots.device, circular=True
            )
        else:
            valid = valid & held.translate(slots, 1, valid, fixed)[1]
        held.ensure_block_capacity(plan.length)
        held.plan(with_successors(picked, plan.candidate_high, config.prefetch_successors), row_tokens=1)
        return slots, valid


def with_successors(picked: torch.Tensor, limit: torch.Tensor, count: int) -> torch.Tensor:
    """picked [B, NG, T] token ids (-1: none) -> each (row, group)'s ids and the `count` after each that lie below
    limit[row], each once, ascending, padded with -1 to T * (1 + count)."""
    width = picked.shape[-1] * (1 + count)
    rows = []
    for row, row_limit in zip(picked.tolist(), limit.tolist(), strict=True):
        groups = []
        for ids in row:
            held = sorted({i + d for i in ids if i >= 0 for d in range(count + 1) if d == 0 or i + d < row_limit})
            groups.append(held + [-1] * (width - len(held)))
        rows.append(groups)
    return torch.tensor(rows, dtype=torch.int64, device=picked.device)


def generate_pair(model, device: str, steps: int, lag: int, granularity: str = "block", settings: dict | None = None,
                  **generate_kwargs):
    """(resident reference, offloaded) greedy generations of a left-padded batch, offloaded with `granularity`,
    both with SPARSE updated by `settings`; with lag 1 the reference selects as LaggedSelection
    (LaggedTokenSelection) does."""
    config = {**SPARSE, **(settings or {})}
    input_ids, attention_mask = (tensor.to(device) for tensor in left_padded_batch(LENGTHS))
    with asynctls_hf.patched(model, **config):
        if lag:
            original = attention.select_tokens
            attention.select_tokens = LaggedSelection() if granularity == "block" else LaggedTokenSelection()
            try:
                reference = greedy(model, input_ids, attention_mask, steps, **generate_kwargs)
            finally:
                attention.select_tokens = original
        else:
            reference = greedy(model, input_ids, attention_mask, steps, **generate_kwargs)
    with asynctls_hf.patched(model, offload=True, prefetch_lag=lag, offload_granularity=granularity, **config):
        offloaded = greedy(model, input_ids, attention_mask, steps, **generate_kwargs)
    return reference, offloaded


# Offloaded by tokens with lag 1, the picks and their successors must fit the token slots: 2 * 36 <= 5 * 16.
TOKEN_LAG1 = dict(top_blocks=5)


@pytest.mark.parametrize(("lag", "granularity", "settings"), [
    (0, "block", {}), (1, "block", {}), (0, "token", {}), (1, "token", TOKEN_LAG1),
    (1, "token", dict(prefetch_successors=0)),
])
@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite])
def test_offloaded_generation_equals_resident_exactly(build, lag, granularity, settings):
    reference, offloaded = generate_pair(build(), "cpu", 30, lag, granularity, settings)
    assert_same_scores_exactly(reference, offloaded)
    cache = returned_cache(offloaded)
    stats = cache.stats()
    assert stats["offloaded"] and stats["sparse_layer_steps"] == 29 * len(cache.layers)
    assert 0 < stats["hit_rate"] < 1, "temporal locality gives hits, new blocks misses"
    assert stats["h2d_bytes"] > 0 and stats["copy_wait_seconds"] == 0
    assert len(stats["layers"]) == len(cache.layers)
    assert stats["h2d_bytes"] == sum(layer["copied_bytes"] for layer in stats["layers"])
    assert stats["host_memory_bytes"] > 0
    assert returned_cache(reference).stats()["h2d_bytes"] == 0


@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite])
def test_token_granularity_copies_a_fraction_of_the_bytes_of_blocks(build):
    """Exact both ways; token slots fetch only the selected tokens they lack, blocks every token of a missed
    block. Here selection picks 36 of the 64 tokens of the kept blocks (at the defaults, 944 of 8192)."""
    model = build()
    _, by_block = generate_pair(model, "cpu", 30, 0, "block")
    _, by_token = generate_pair(model, "cpu", 30, 0, "token")
    assert torch.equal(by_block.sequences, by_token.sequences)
    block_bytes, token_bytes = (returned_cache(output).stats()["h2d_bytes"] for output in (by_block, by_token))
    assert 0 < token_bytes < 0.75 * block_bytes


@pytest.mark.parametrize("granularity", ["block", "token"])
def test_offloaded_beam_search_equals_resident(granularity):
    """Beam search reorders the cache rows at every step (select_rows on the store, slots and resident set)."""
    reference, offloaded = generate_pair(
        tiny_qwen3(), "cpu", 12, 0, granularity, num_beams=3, num_return_sequences=2
    )
    assert torch.equal(reference.sequences, offloaded.sequences)


def test_offloaded_crop_then_decode_equals_resident():
    """Crop (as assisted decoding does) mid-decode, then decode on: the host store, the ring and the index agree."""
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    tokens = torch.randint(1, 90, (len(LENGTHS), 12), generator=torch.Generator().manual_seed(1))
    logits = {}
    for offload in (False, True):
        with asynctls_hf.patched(model, offload=offload, prefetch_lag=0, **SPARSE), torch.no_grad():
            output = model(input_ids, attention_mask=attention_mask, use_cache=True)
            cache = returned_cache(output)
            steps = []
            mask = attention_mask
            for step in range(12):
                if step == 7:
                    cache.crop(-4)
                    mask = mask[:, :-4]
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                positions = mask.sum(dim=1, keepdim=True) - 1
                step_output = model(
                    tokens[:, step : step + 1], attention_mask=mask, position_ids=positions, **{CACHE_KWARG: cache}
                )
                steps.append(step_output.logits)
            logits[offload] = torch.cat(steps, dim=1)
    assert torch.equal(logits[True], logits[False])


def test_exact_mode_transport_on_cuda_has_no_side_stream():
    """The default CUDA transport of an exact-mode cache runs everything on the current stream (no stream is
    made: this runs without a GPU); the copies run inline whatever copy_blocks is asked."""
    cache = asynctls_hf.AsyncTLSCache.for_model(tiny_qwen3(), asynctls_hf.AsyncTLSConfig(offload=True, prefetch_lag=0))
    transport = cache.transport_factory(torch.device("cuda"))
    assert isinstance(transport, CudaStreamTransport) and transport.stream is None
    assert cache.config.cuda_graph and not transport.graph_only and transport.write_stream is None
    with pytest.raises(ValueError, match="side_stream=False"):
        CudaStreamTransport("cuda", stream=object(), side_stream=False)


def test_auto_stays_resident_on_the_cpu_and_true_offloads_without_generate():
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    with asynctls_hf.patched(model, offload="auto", **SPARSE):
        assert not returned_cache(greedy(model, input_ids, attention_mask, 3)).stats()["offloaded"]
    with asynctls_hf.patched(model, offload=True, **SPARSE), torch.no_grad():
        cache = returned_cache(model(input_ids, attention_mask=attention_mask, use_cache=True))
    assert cache.stats()["offloaded"]


def test_offloaded_chunked_prefill_equals_full_attention():
    """Prefill chunks after the first attend over the tokens read back from the host store."""
    from helpers import assert_chunked_forward_equals_full

    settings = dict(token_budget=4096, sink_tokens=4, local_tokens=16, block_size=16, top_blocks=256, offload=True)
    assert_chunked_forward_equals_full(tiny_qwen3(), [300, 211, 97], (64, 150, 299), atol=2e-5, **settings)
    assert_chunked_forward_equals_full(tiny_glm4_moe_lite(), [120, 77], (50, 51), atol=2e-5, **settings)


def test_offloaded_dense_steps_equal_resident():
    """While the context fits the budget, decode steps attend over every token, read back from the host store."""
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    dense = dict(SPARSE, token_budget=256, top_blocks=16)
    outputs = []
    for offload in (False, True):
        with asynctls_hf.patched(model, offload=offload, prefetch_lag=0, **dense):
            outputs.append(greedy(model, input_ids, attention_mask, 8))
    assert_same_scores_exactly(*outputs)
    stats = returned_cache(outputs[1]).stats()
    assert stats["offloaded"] and stats["dense_layer_steps"] == 7 * 2 and stats["sparse_layer_steps"] == 0


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_offloaded_index_equals_the_resident_index(backend):
    """An offloaded layer builds its block summaries from the ring (shifted slots, row starts that may be negative,
    a view of the summaries from the current block on) and its labels from the new keys: with the Triton kernels
    (interpreted on the CPU) and the reference, after a left-padded prefill and decode steps across block
    boundaries, they equal the resident layer's bit for bit."""
    from asynctls_hf.cache import AsyncTLSCache, LayerGeometry
    from asynctls_hf.config import AsyncTLSConfig

    generator = torch.Generator().manual_seed(0)
    geometry = [LayerGeometry(2, 24, 16)]
    row_start = torch.tensor([0, 29, 45])
    caches = []
    for offload in (False, True):
        config = AsyncTLSConfig(token_budget=48, sink_tokens=4, local_tokens=8, block_size=16, top_blocks=4,
                                offload=offload, backend=backend if offload else "torch")
        cache = AsyncTLSCache(geometry, config, max_length=160)
        cache.row_start, cache._row_start_host = row_start, row_start.tolist()
        caches.append(cache)
    chunks = [61] + [1] * 40
    for tokens in chunks:
        query = torch.randn(3, 4, tokens, 24, generator=generator)
        keys = torch.randn(3, 2, tokens, 24, generator=generator)
        values = torch.randn(3, 2, tokens, 16, generator=generator)
        for cache in caches:
            attention.append_tokens(cache, 0, query, keys, values)
    resident, offloaded = (cache.layers[0] for cache in caches)
    assert offloaded.offloaded is not None and resident.offloaded is None
    blocks = -(-resident.length // 16)
    for name in ("block_max", "block_min"):
        assert torch.equal(getattr(offloaded, name)[:, :, :blocks], getattr(resident, name)[:, :, :blocks]), name
    for name in ("label_channels", "label_codes", "label_scale", "label_zero"):
        assert torch.equal(getattr(offloaded, name), getattr(resident, name)), name
