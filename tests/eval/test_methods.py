"""Each method of the registry selects what its definition says, checked on random keys and queries."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

from asynctls_hf import ops
from asynctls_hf.attention import select_tokens
from asynctls_hf.cache import AsyncTLSCache, LayerGeometry
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.eval.methods import ALL_BLOCKS, METHODS, method_config

GROUPS, HEADS_PER_GROUP, WIDTH = 2, 3, 16
BUDGET = 64
BASE = dict(block_size=16, top_blocks=6, sink_tokens=4, local_tokens=8)
PADS = [0, 21]
LENGTH = 301  # not a multiple of the block size


@dataclass
class Selection:
    """One (row, group) of a selection with everything needed to check it against a definition."""

    config: AsyncTLSConfig
    chosen: set[int]  # valid selected slots, sinks and local window included
    picked: set[int]  # valid slots picked by token selection (after the sinks and local window)
    fixed: set[int]  # the sinks and the local window of this row
    candidates: list[int]  # slots token selection may pick
    exact: torch.Tensor  # [LENGTH] sum over the group's heads of q . k
    label: torch.Tensor  # [LENGTH] the same score from the quantized labels
    bound: dict[int, float]  # Quest upper bound of each block holding a candidate

    def block_of(self, slot: int) -> int:
        return slot // self.config.block_size

    def top_blocks(self) -> set[int]:
        ranked = sorted(self.bound, key=self.bound.get, reverse=True)
        return set(ranked[: self.config.top_blocks])

    def slots_of(self, blocks: set[int]) -> list[int]:
        return [slot for slot in self.candidates if self.block_of(slot) in blocks]


def selections(config: AsyncTLSConfig, seed: int = 0) -> list[Selection]:
    """Select on a one-layer cache of random keys (rows left-padded by PADS) and describe every (row, group)."""
    generator = torch.Generator().manual_seed(seed)
    batch = len(PADS)
    cache = AsyncTLSCache([LayerGeometry(GROUPS, WIDTH, WIDTH)], config)
    mask = torch.ones(batch, LENGTH, dtype=torch.long)
    for row, pad in enumerate(PADS):
        mask[row, :pad] = 0
    cache.observe_attention_mask(mask, batch, LENGTH, torch.device("cpu"))
    keys = torch.randn(batch, GROUPS, LENGTH, WIDTH, generator=generator)
    values = torch.randn(batch, GROUPS, LENGTH, WIDTH, generator=generator)
    prompt_query = torch.randn(batch, GROUPS * HEADS_PER_GROUP, LENGTH, WIDTH, generator=generator)
    layer = cache.layers[0]
    layer.append(keys, values, prompt_query, cache.row_start)
    query = torch.randn(batch, GROUPS, HEADS_PER_GROUP, WIDTH, generator=generator)
    slots, valid = select_tokens(
        query, layer, cache.decode_plan(LENGTH, query.device), config, scaling=WIDTH**-0.5
    )

    fixed_count = config.sink_tokens + config.local_tokens
    summed_query = query.sum(dim=2)  # [B, NG, Dk]
    exact = torch.einsum("bgd,bgld->bgl", summed_query, keys)
    labels = ops.dequantize_labels(layer.label_codes, layer.label_scale, layer.label_zero, config.label_bits)
    label_query = summed_query.gather(-1, layer.label_channels)
    label = torch.einsum("bgc,bglc->bgl", label_query, labels[:, :, :LENGTH])
    result = []
    for row, pad in enumerate(PADS):
        candidates = list(range(pad + config.sink_tokens, LENGTH - config.local_tokens))
        fixed = set(range(pad, pad + config.sink_tokens)) | set(range(LENGTH - config.local_tokens, LENGTH))
        for group in range(GROUPS):
            row_slots, row_valid = slots[row, group], valid[row, group]
            attended = row_slots[row_valid].tolist()
            assert len(attended) == len(set(attended)), "a slot is attended twice"
            assert all(pad <= slot < LENGTH for slot in attended), "a pad slot was selected"
            assert len(attended) <= config.token_budget
            bound = {}
            for block in {slot // config.block_size for slot in candidates}:
                begin, end = max(block * config.block_size, pad), min((block + 1) * config.block_size, LENGTH)
                block_keys = keys[row, group, begin:end]
                heads = query[row, group]
                bound[block] = float(
                    (heads.clamp(min=0) @ block_keys.amax(dim=0) + heads.clamp(max=0) @ block_keys.amin(dim=0)).sum()
                )
            result.append(Selection(
                config=config,
                chosen=set(attended),
                picked=set(row_slots[fixed_count:][row_valid[fixed_count:]].tolist()),
                fixed=fixed,
                candidates=candidates,
                exact=exact[row, group],
                label=label[row, group],
                bound=bound,
            ))
    return result


def assert_top(scores: torch.Tensor, picked: set[int], pool: list[int], count: int) -> None:
    """`picked` is a top-`count` of `pool` by `scores` (ties at the boundary allowed)."""
    assert picked <= set(pool)
    assert len(picked) == min(count, len(pool))
    rest = [slot for slot in pool if slot not in picked]
    if picked and rest:
        assert min(float(scores[slot]) for slot in picked) >= max(float(scores[slot]) for slot in rest) - 1e-4


def check_asynctls(selection: Selection) -> None:
    kept = selection.top_blocks()
    assert {selection.block_of(slot) for slot in selection.picked} <= kept
    assert_top(selection.label, selection.picked, selection.slots_of(kept), selection.config.selected_tokens)


def check_quest(selection: Selection) -> None:
    config = selection.config
    assert config.top_blocks * config.block_size == config.selected_tokens
    assert selection.picked == set(selection.slots_of(selection.top_blocks())), "quest must keep whole blocks"


def check_double_sparsity(selection: Selection) -> None:
    assert selection.config.top_blocks >= len(selection.bound)
    assert_top(selection.label, selection.picked, selection.candidates, selection.config.selected_tokens)


def check_token_topk(selection: Selection) -> None:
    assert selection.config.label_channels == WIDTH and selection.config.label_bits == 16
    assert_top(selection.exact, selection.picked, selection.candidates, selection.config.selected_tokens)
    expected = sorted(selection.candidates, key=lambda slot: float(selection.exact[slot]), reverse=True)
    assert selection.picked == set(expected[: selection.config.selected_tokens])


def check_streaming(selection: Selection) -> None:
    assert selection.config.sink_tokens + selection.config.local_tokens == BUDGET
    assert selection.picked == set()
    assert selection.chosen == selection.fixed


CHECKS = {
    "asynctls": check_asynctls,
    "quest": check_quest,
    "double-sparsity": check_double_sparsity,
    "token-topk": check_token_topk,
    "streaming": check_streaming,
}


def test_every_sparse_method_has_a_check():
    assert set(CHECKS) == {name for name, method in METHODS.items() if method.settings is not None}


@pytest.mark.parametrize("name", list(METHODS))
def test_method_selects_by_its_definition(name):
    config = method_config(name, BUDGET, WIDTH, **BASE)
    if METHODS[name].settings is None:
        assert config is None
        return
    assert config.token_budget == BUDGET
    assert config.block_size == BASE["block_size"]
    for seed in range(3):
        for selection in selections(config, seed):
            assert selection.fixed <= selection.chosen, "sinks and local window are always attended"
            CHECKS[name](selection)


@pytest.mark.parametrize("name", [name for name, method in METHODS.items() if method.settings is not None])
@pytest.mark.parametrize("budget", [96, 128, 1024])
def test_methods_spend_the_same_budget(name, budget):
    config = method_config(name, budget, 128, block_size=64, sink_tokens=16, local_tokens=16)
    assert config.token_budget == budget
    assert config.sink_tokens == 16


def test_method_config_settings():
    assert method_config("asynctls", 1024, 128) == AsyncTLSConfig(token_budget=1024)
    assert method_config("asynctls", 16384, 128).top_blocks == -(-(16384 - 16 - 64) // 64)
    quest = method_config("quest", 1024, 128)
    assert (quest.top_blocks, quest.local_tokens) == (14, 1024 - 16 - 14 * 64)
    assert method_config("double-sparsity", 1024, 128).top_blocks == ALL_BLOCKS
    assert method_config("token-topk", 512, 576).label_channels == 576
    with pytest.raises(ValueError, match="unknown method"):
        method_config("h2o", 1024, 128)
    with pytest.raises(ValueError, match="quest needs a token budget"):
        method_config("quest", 100, 128)
