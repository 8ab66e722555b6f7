"""Family-independent AsyncTLS attention: append to the cache, then dense prefill or two-level sparse decode."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from asynctls_hf import ops
from asynctls_hf.cache import AsyncTLSCache, AsyncTLSLayer, DecodePlan
from asynctls_hf.config import AsyncTLSConfig


def filter_blocks(
    query: torch.Tensor,
    layer: AsyncTLSLayer,
    plan: DecodePlan,
    config: AsyncTLSConfig,
    on_kept_blocks: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Block filtering: query [B, NG, G, Dk] -> (kept_blocks int64, kept_valid bool), each [B, NG, Kb], the
    top_blocks best blocks of each group by their min/max bound (not valid: a pick that holds no candidate).
    on_kept_blocks, when given, is called with both."""
    scores = ops.block_scores(
        query, layer.block_max[:, :, : plan.n_blocks], layer.block_min[:, :, : plan.n_blocks], plan.block_valid,
        backend=config.backend,
    )
    kept_scores, kept_blocks = ops.select_top_k(scores, min(config.top_blocks, plan.n_blocks), backend=config.backend)
    kept_valid = kept_scores > float("-inf")
    if on_kept_blocks is not None:
        on_kept_blocks(kept_blocks, kept_valid)
    return kept_blocks, kept_valid


def fixed_only(fixed_slots: torch.Tensor, plan: DecodePlan, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The selection when token selection picks nothing (budget = sinks + window): fixed_slots [B, F] and
    plan.fixed_valid, each expanded to [B, groups, F]."""
    return fixed_slots[:, None, :].expand(-1, groups, -1), plan.fixed_valid[:, None, :].expand(-1, groups, -1)


def select_from_blocks(
    query: torch.Tensor,
    layer: AsyncTLSLayer,
    plan: DecodePlan,
    config: AsyncTLSConfig,
    blocks: torch.Tensor,
    block_usable: torch.Tensor,
    fixed_slots: torch.Tensor,
    scaling: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token selection among the tokens of `blocks` [B, NG, Kb] int64 where block_usable [B, NG, Kb] bool, on the
    labels, ranked as layer.token_scoring says (`scaling`: the attention's softmax scale, for head mass).
    Returns slots [B, NG, token_budget] int64 and valid [B, NG, token_budget] bool: fixed_slots [B, F] (valid as
    plan.fixed_valid), then the selected tokens' slots in no particular order."""
    candidates, token_scores = ops.candidate_scores(
        query,
        layer.label_channels,
        layer.label_codes,
        layer.label_scale,
        layer.label_zero,
        blocks,
        torch.where(block_usable, 0.0, float("-inf")),
        plan.candidate_low,
        plan.candidate_high,
        config.block_size,
        config.label_bits,
        scaling if layer.token_scoring == "head_mass" else None,
        backend=config.backend,
    )  # [B, NG, Kb * block_size] each: slots of the blocks, and their label scores (-inf if not candidates)
    return ops.select_tokens_into(
        token_scores,
        candidates,
        min(config.selected_tokens, candidates.shape[-1]),
        fixed_slots,
        plan.fixed_valid,
        backend=config.backend,
    )


def select_tokens(
    query: torch.Tensor,
    layer: AsyncTLSLayer,
    plan: DecodePlan,
    config: AsyncTLSConfig,
    *,
    scaling: float,
    on_kept_blocks: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two-level selection for one decode step of a resident layer, shared by each group's query heads.

    query [B, NG, G, Dk]; scaling, the attention's softmax scale. Returns slots [B, NG, token_budget] int64 and
    valid [B, NG, token_budget] bool: sinks, then the local window, then the best tokens of the best blocks in no
    particular order (block filtering on the min/max summaries, then token selection on the quantized labels). Pad
    slots and duplicates are never valid. on_kept_blocks, when given, is called with the blocks block filtering
    kept, kept_blocks [B, NG, Kb] int64, and kept_valid [B, NG, Kb] bool (False for picks that hold no candidate
    slot).
    """
    if config.selected_tokens == 0:
        return fixed_only(plan.fixed_slots, plan, query.shape[1])
    kept_blocks, kept_valid = filter_blocks(query, layer, plan, config, on_kept_blocks)
    return select_from_blocks(query, layer, plan, config, kept_blocks, kept_valid, plan.fixed_slots, scaling)


def select_offloaded_tokens(
    query: torch.Tensor,
    layer: AsyncTLSLayer,
    plan: DecodePlan,
    config: AsyncTLSConfig,
    *,
    scaling: float,
    on_kept_blocks: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """select_tokens for an offloaded layer, in positions of its device buffer (layer.offloaded.keys).

    Block filtering names the blocks wanted (this step's with prefetch_lag 0, the next step's with lag 1); the
    engine makes the blocks token selection may use resident; the sinks and the local window come from the
    device window. With offload_granularity "token", token selection runs on every wanted block (their labels
    are on the device) and the engine fetches the selected tokens it lacks (with lag 1 also their successors up
    to the candidates' bound, for the next step). The caller calls
    layer.offloaded.engine.end_step() once the step's attention is issued.
    """
    offloaded = layer.offloaded
    fixed_positions = plan.window_positions
    if config.selected_tokens == 0:
        return fixed_only(fixed_positions, plan, query.shape[1])
    kept_blocks, kept_valid = filter_blocks(query, layer, plan, config, on_kept_blocks)
    if offloaded.engine.granularity == "token":
        slots, valid = select_from_blocks(
            query, layer, plan, config, kept_blocks, kept_valid, fixed_positions, scaling
        )
        return offloaded.engine.fetch_tokens(
            slots, valid, fixed=fixed_positions.shape[1], successor_limit=plan.candidate_high
        )
    blocks = offloaded.engine.begin_step(torch.where(kept_valid, kept_blocks, -1))
    slots, valid = select_from_blocks(
        query, layer, plan, config, blocks.clamp(min=0), blocks >= 0, fixed_positions, scaling
    )
    # The sinks and window entries are device positions already; a selected token whose block is not resident
    # comes out not valid at position 0 (sink 0): the slot it names may hold a partial block's tail, host memory
    # never written, which attention must not even multiply by zero.
    return offloaded.engine.translate(slots, valid, fixed=fixed_positions.shape[1])


def asynctls_attention(
    cache: AsyncTLSCache,
    layer_idx: int,
    query: torch.Tensor,
    key_states: torch.Tensor,
    value_states: torch.Tensor | None,
    scaling: float,
) -> torch.Tensor:
    """Append T tokens to layer `layer_idx` of `cache` and attend.

    query [B, H, T, Dk]; key_states [B, NG, T, Dk]; value_states [B, NG, T, Dv], or None when the values are a
    prefix of the keys (MLA latent). T > 1 is prefill: dense causal attention in chunks. T == 1 is a decode
    step: dense while the context fits the token budget, two-level sparse after. Returns [B, H, T, Dv].
    """
    first_slot = append_tokens(cache, layer_idx, query, key_states, value_states)
    layer = cache.layers[layer_idx]
    if query.shape[2] > 1:
        keys, values = layer.context_kv()
        return ops.causal_prefill_attention(
            query,
            keys,
            values,
            first_slot,
            cache.row_start.to(query.device),
            cache.row_start_host,
            scaling,
            cache.config.prefill_chunk_size,
        )
    return decode_attention(cache, layer_idx, query, scaling)


def append_tokens(
    cache: AsyncTLSCache,
    layer_idx: int,
    query: torch.Tensor,
    key_states: torch.Tensor,
    value_states: torch.Tensor | None,
) -> int:
    """Write T tokens to layer `layer_idx` and index them; returns the slot of the first one.

    Shapes as in asynctls_attention; `query` chooses the label channels on the layer's first append. A decode
    token goes to the slot the step's DecodePlan holds on the device (capturable in a CUDA graph) wherever
    AsyncTLSLayer.can_append_in_place allows, resident or offloaded.
    """
    layer = cache.layers[layer_idx]
    first_slot = layer.length
    row_start = cache.row_start.to(query.device)
    if key_states.shape[2] == 1 and layer.can_append_in_place(row_start):
        plan = cache.decode_plan(first_slot + 1, query.device)
        layer.append_token(key_states, value_states, plan.new_slot, row_start)
    else:
        layer.append(key_states, value_states, query, row_start)
    return first_slot


def decode_attention(cache: AsyncTLSCache, layer_idx: int, query: torch.Tensor, scaling: float) -> torch.Tensor:
    """One decode step of layer `layer_idx` over its cache (the new token already appended).

    query [B, H, 1, Dk]. Dense while the context fits the token budget, two-level sparse after.
    Returns [B, H, 1, Dv].
    """
    layer = cache.layers[layer_idx]
    batch, heads = query.shape[:2]
    plan = cache.decode_plan(layer.length, query.device)
    grouped_query = query.view(batch, layer.num_groups, heads // layer.num_groups, query.shape[-1])
    if plan.dense:
        keys, values = layer.context_kv()
        output = ops.dense_decode_attention(grouped_query, keys, values, plan.key_valid, scaling)
        cache.record_decode(plan.key_valid.sum(dim=1, keepdim=True).expand(-1, layer.num_groups), dense=True)
    else:
        record = None if cache.block_recorder is None else functools.partial(cache.block_recorder, layer_idx)
        select = select_tokens if layer.offloaded is None else select_offloaded_tokens
        slots, valid = select(grouped_query, layer, plan, cache.config, scaling=scaling, on_kept_blocks=record)
        output = ops.sparse_attention(
            grouped_query, layer.keys, layer.values, slots, valid, scaling, backend=cache.config.backend
        )
        if layer.offloaded is not None:
            layer.offloaded.engine.end_step()
        cache.record_decode(valid.sum(dim=-1), dense=False)
    return output.reshape(batch, heads, 1, -1)
