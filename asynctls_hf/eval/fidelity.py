"""Attention fidelity: how much of full attention's probability mass lands on the tokens a method selects.

For each sparse decode step and layer, every query head's full softmax over all cached keys of the layer is
computed and summed over the slots the method selected (its recall of attention mass). A recall of 1 means the
sparse step attends to everything that mattered; the output error of sparse attention is bounded by 1 - recall.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from asynctls_hf import attention
from asynctls_hf.api import cache_argument, patched
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.config import AsyncTLSConfig


@contextlib.contextmanager
def observe_selections(observer: Callable):
    """Inside the block, each two-level selection also calls observer(query, layer, plan, slots, valid).

    Wraps `asynctls_hf.attention.select_tokens` (looked up by the decode path at each call) and restores it on
    exit, whatever happens.
    """
    original = attention.select_tokens

    def select_and_observe(query, layer, plan, config, **options):
        slots, valid = original(query, layer, plan, config, **options)
        observer(query, layer, plan, slots, valid)
        return slots, valid

    attention.select_tokens = select_and_observe
    try:
        yield
    finally:
        attention.select_tokens = original


def selected_mass(query: torch.Tensor, keys: torch.Tensor, key_valid: torch.Tensor, slots: torch.Tensor,
                  valid: torch.Tensor, scaling: float) -> torch.Tensor:
    """Share of each head's full softmax mass on its group's selected slots.

    query [B, NG, G, Dk]; keys [B, NG, L, Dk]; key_valid [B, L] (False for pad slots); slots, valid [B, NG, N]
    (valid slots are distinct). Returns [B, NG, G] float32 in [0, 1].
    """
    scores = torch.einsum("bgqd,bgld->bgql", query.float(), keys.float()) * scaling
    probabilities = torch.softmax(scores.masked_fill(~key_valid[:, None, None, :], float("-inf")), dim=-1)
    heads = query.shape[2]
    picked = probabilities.gather(-1, slots[:, :, None, :].expand(-1, -1, heads, -1))
    return (picked * valid[:, :, None, :]).sum(dim=-1)


@torch.no_grad()
def attention_recall(model, input_ids: torch.Tensor, config: AsyncTLSConfig, steps: int = 8) -> dict:
    """Prefill `input_ids` [1, T] with `config`, decode `steps` greedy tokens, and report the recall per layer.

    Returns {"per_layer": [mean recall of each layer], "mean": mean over layers, "steps": sparse decode steps
    observed}. Layers or steps decoded densely (context within the budget) are not sparse and are not counted;
    `per_layer` holds None for a layer never decoded sparsely.
    """
    decoder_layers = model.get_decoder().layers
    scalings = [layer.self_attn.scaling for layer in decoder_layers]
    cache = AsyncTLSCache.for_model(model, config)
    layer_index = {id(layer): index for index, layer in enumerate(cache.layers)}
    totals = [0.0] * len(decoder_layers)
    counts = [0] * len(decoder_layers)

    def observe(query, layer, plan, slots, valid):
        index = layer_index[id(layer)]
        key_valid = torch.arange(plan.length, device=query.device)[None, :] >= plan.row_start[:, None]
        recall = selected_mass(query, layer.keys[:, :, : plan.length], key_valid, slots, valid, scalings[index])
        totals[index] += recall.mean().item()
        counts[index] += 1

    cache_kwargs = {cache_argument(model): cache}
    with patched(model, config), observe_selections(observe):
        logits = model(input_ids=input_ids, **cache_kwargs).logits
        for _ in range(steps):
            next_token = logits[:, -1:].argmax(dim=-1)
            logits = model(input_ids=next_token, **cache_kwargs).logits
    per_layer = [total / count if count else None for total, count in zip(totals, counts, strict=True)]
    observed = [value for value in per_layer if value is not None]
    return {
        "per_layer": per_layer,
        "mean": sum(observed) / len(observed) if observed else None,
        "steps": max(counts),
    }
