"""Two-level selection checked against its definition on random inputs."""

import pytest
import torch

from asynctls_hf.attention import select_tokens
from asynctls_hf.cache import AsyncTLSCache, LayerGeometry
from asynctls_hf.config import AsyncTLSConfig

GROUPS, HEADS_PER_GROUP, WIDTH = 2, 3, 16


def filled_cache(config: AsyncTLSConfig, pads: list[int], length: int, seed: int = 0):
    """A one-layer cache holding `length` slots of random keys, rows left-padded by `pads`; returns cache, query."""
    generator = torch.Generator().manual_seed(seed)
    batch = len(pads)
    cache = AsyncTLSCache([LayerGeometry(GROUPS, WIDTH, WIDTH)], config)
    cache.row_start = torch.tensor(pads)
    cache._row_start_host = list(pads)
    keys = torch.randn(batch, GROUPS, length, WIDTH, generator=generator)
    values = torch.randn(batch, GROUPS, length, WIDTH, generator=generator)
    prompt_query = torch.randn(batch, GROUPS * HEADS_PER_GROUP, length, WIDTH, generator=generator)
    cache.layers[0].append(keys, values, prompt_query, cache.row_start)
    query = torch.randn(batch, GROUPS, HEADS_PER_GROUP, WIDTH, generator=generator)
    return cache, query


def exact_scores(cache, query):
    """Sum over each group's heads of q . k for every slot: [B, NG, length]."""
    layer = cache.layers[0]
    return torch.einsum("bgd,bgld->bgl", query.sum(dim=2), layer.keys[:, :, : layer.length])


def exact_head_mass(cache, query, candidates, scaling):
    """log sum over each group's heads of the head's softmax over `candidates` [N] of scaling * q . k:
    [B, NG, N]."""
    layer = cache.layers[0]
    head_scores = torch.einsum("bghd,bgld->bghl", query, layer.keys[:, :, candidates]) * scaling
    return torch.log_softmax(head_scores, dim=-1).logsumexp(dim=2)


@pytest.mark.parametrize("token_scoring", ["summed", "head_mass"])
@pytest.mark.parametrize("length", [100, 133])
def test_full_blocks_and_16_bit_labels_give_exact_token_top_k(length, token_scoring):
    config = AsyncTLSConfig(
        block_size=8,
        top_blocks=1000,
        token_budget=40,
        sink_tokens=3,
        local_tokens=5,
        label_channels=WIDTH,
        label_bits=16,
        token_scoring=token_scoring,
    )
    pads = [0, 7, 30]
    scaling = WIDTH**-0.5
    cache, query = filled_cache(config, pads, length)
    plan = cache.decode_plan(length, query.device)
    slots, valid = select_tokens(query, cache.layers[0], plan, config, scaling=scaling)
    for row, pad in enumerate(pads):
        candidates = torch.arange(pad + config.sink_tokens, length - config.local_tokens)
        if token_scoring == "summed":
            scores = exact_scores(cache, query)[row, :, candidates]
        else:
            scores = exact_head_mass(cache, query, candidates, scaling)[row]
        for group in range(GROUPS):
            expected = candidates[scores[group].topk(config.selected_tokens).indices]
            chosen = slots[row, group, config.sink_tokens + config.local_tokens :]
            assert set(chosen.tolist()) == set(expected.tolist())


@pytest.mark.parametrize("label_bits", [4, 8, 16])
def test_selection_invariants_with_padding(label_bits):
    config = AsyncTLSConfig(
        block_size=8, top_blocks=4, token_budget=30, sink_tokens=4, local_tokens=6, label_bits=label_bits
    )
    pads = [0, 13, 70, 93]
    length = 101
    cache, query = filled_cache(config, pads, length, seed=label_bits)
    plan = cache.decode_plan(length, query.device)
    slots, valid = select_tokens(query, cache.layers[0], plan, config, scaling=WIDTH**-0.5)
    assert slots.shape == valid.shape == (len(pads), GROUPS, config.token_budget)
    for row, pad in enumerate(pads):
        real_length = length - pad
        sinks = set(range(pad, pad + min(config.sink_tokens, real_length)))
        local = set(range(max(length - config.local_tokens, pad), length))
        for group in range(GROUPS):
            attended = slots[row, group][valid[row, group]].tolist()
            assert len(attended) == len(set(attended)), "a slot is attended twice"
            assert len(attended) <= config.token_budget
            assert all(pad <= slot < length for slot in attended), "a pad slot was selected"
            assert sinks | local <= set(attended)
            assert len(attended) == min(config.token_budget, real_length)


def test_streaming_budget_attends_only_sinks_and_local_window():
    config = AsyncTLSConfig(block_size=8, top_blocks=4, token_budget=12, sink_tokens=4, local_tokens=8)
    cache, query = filled_cache(config, [0, 5], 60)
    slots, valid = select_tokens(
        query, cache.layers[0], cache.decode_plan(60, query.device), config, scaling=WIDTH**-0.5
    )
    assert valid.all()
    assert set(slots[1, 0].tolist()) == {5, 6, 7, 8, *range(52, 60)}


def test_block_filter_keeps_the_blocks_with_the_highest_upper_bound():
    config = AsyncTLSConfig(
        block_size=8, top_blocks=3, token_budget=24, sink_tokens=0, local_tokens=0, label_bits=16, label_channels=WIDTH
    )
    length = 96
    cache, query = filled_cache(config, [0], length)
    slots, valid = select_tokens(
        query, cache.layers[0], cache.decode_plan(length, query.device), config, scaling=WIDTH**-0.5
    )
    layer = cache.layers[0]
    keys = layer.keys[0, :, :length].view(GROUPS, length // 8, 8, WIDTH)
    bounds = torch.einsum("gd,gnd->gn", query[0].clamp(min=0).sum(1), keys.amax(2)) + torch.einsum(
        "gd,gnd->gn", query[0].clamp(max=0).sum(1), keys.amin(2)
    )
    for group in range(GROUPS):
        expected_blocks = set(bounds[group].topk(3).indices.tolist())
        assert {slot // 8 for slot in slots[0, group].tolist()} == expected_blocks
        exact = exact_scores(cache, query)[0, group]
        block_max_exact = exact.view(-1, 8).amax(1)
        assert (bounds[group] >= block_max_exact - 1e-4).all(), "the block bound must bound every token score"
