"""Dense causal prefill attention without a materialized mask where SDPA's flash kernel can take it.

The reference (naive.causal_prefill_attention) makes one SDPA call over the batch with a boolean mask [B, 1, c, L]
for causality and left padding: at 96k tokens, batch 8 and 2048 queries that mask is 1.5 GiB per layer and chunk,
and a mask keeps SDPA off its flash kernel. Per row, the real queries of a chunk attend to the row's real keys up
to themselves: a lower-right causal pattern over [row_start, L), which flash computes from the shapes alone
(torch.nn.attention.bias.causal_lower_right). Pad queries attend to themselves only, as in the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

from asynctls_hf.ops import naive


def flash_takes(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor) -> bool:
    """Whether SDPA's flash kernel runs lower-right causal attention of one row of these shapes and dtypes (GQA
    included) on their device: never on the CPU; on CUDA as torch's own dispatch of a causal_lower_right bias
    decides: it asks with is_causal False (with is_causal, the check refuses query and key lengths that differ),
    then runs flash's own causal mode, which is lower-right."""
    if query.device.type != "cuda":
        return False
    gqa = query.shape[1] != keys.shape[1]
    params = torch.backends.cuda.SDPAParams(query[:1], keys[:1], values[:1], None, 0.0, False, gqa)
    return torch.backends.cuda.can_use_flash_attention(params)


def working_bytes(
    heads: int,
    groups: int,
    key_width: int,
    value_width: int,
    batch: int,
    chunk: int,
    tokens: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> int:
    """GPU bytes causal_prefill_attention allocates beside its inputs and output for chunks of `chunk` queries over
    up to `tokens` keys per row, with `heads` query heads over `groups` key/value heads of these widths: none of
    note in the per-row flash form (where flash_takes these shapes on `device`); in the masked form, its mask
    [B, c, T] (two boolean ones alive at once while it is built) and the additive bias SDPA makes of it."""
    device = torch.device(device)
    if device.type == "cuda":
        def probe(count: int, width: int) -> torch.Tensor:
            return torch.empty((1, count, 1, width), dtype=dtype, device=device)

        if flash_takes(probe(heads, key_width), probe(groups, key_width), probe(groups, value_width)):
            return 0
    return batch * min(chunk, tokens) * tokens * (2 + dtype.itemsize)


def causal_prefill_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    first_query_slot: int,
    row_start: torch.Tensor,
    row_starts: list[int],
    scaling: float,
    chunk_size: int,
    *,
    per_row: bool | None = None,
) -> torch.Tensor:
    """Dense causal attention of T new queries over the cache, as naive.causal_prefill_attention computes it.

    query [B, H, T, Dk] for slots first_query_slot ..; keys [B, NG, L, Dk], values [B, NG, L, Dv] with
    L = first_query_slot + T; row_start [B] (device) and row_starts (the same on the host). per_row: True runs
    one mask-free lower-right causal SDPA per row, False the masked reference in query chunks of chunk_size, None
    the per-row form where flash_takes these shapes. Returns [B, H, T, Dv] in the query's dtype.
    """
    if per_row is None:
        per_row = flash_takes(query, keys, values)
    if not per_row:
        return naive.causal_prefill_attention(query, keys, values, first_query_slot, row_start, scaling, chunk_size)
    batch, heads, tokens, _ = query.shape
    groups = keys.shape[1]
    out = torch.empty((batch, heads, tokens, values.shape[-1]), dtype=query.dtype, device=query.device)
    for row, start in enumerate(row_starts):
        padded = min(max(start - first_query_slot, 0), tokens)  # this chunk's pad queries of the row
        if padded:
            own_values = values[row, :, first_query_slot : first_query_slot + padded]
            out[row, :, :padded] = own_values.repeat_interleave(heads // groups, dim=0).to(query.dtype)
        if padded == tokens:
            continue
        row_keys = keys[row : row + 1, :, start:]
        row_query = query[row : row + 1, :, padded:]
        out[row : row + 1, :, padded:] = F.scaled_dot_product_attention(
            row_query,
            row_keys,
            values[row : row + 1, :, start:],
            attn_mask=causal_lower_right(row_query.shape[2], row_keys.shape[2]),
            scale=scaling,
            enable_gqa=heads != groups,
        )
    return out
