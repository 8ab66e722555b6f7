"""Triton kernel of `block_scores`: the Quest upper bound of every block for a group's queries.

score[b, g, n] = [sum_h relu(q_h), sum_h min(q_h, 0)] . [block_max[n]; block_min[n]], -inf for invalid blocks.
One program folds the group's G heads into the two vectors and streams BLOCK_N block summaries.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import check_float, check_same_device, require


@triton.jit
def _block_scores_kernel(
    query_ptr,
    block_max_ptr,
    block_min_ptr,
    block_valid_ptr,
    scores_ptr,
    groups,
    heads,
    n_blocks,
    stride_query_b,
    stride_query_g,
    stride_query_h,
    stride_max_b,
    stride_max_g,
    stride_max_n,
    stride_min_b,
    stride_min_g,
    stride_min_n,
    stride_valid_b,
    stride_valid_n,
    stride_scores_b,
    stride_scores_g,
    KEY_WIDTH: tl.constexpr,
    HEADS_PAD: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Grid (block tiles, B * NG): scores of BLOCK_N blocks for one row and group."""
    batch = tl.program_id(1) // groups
    group = tl.program_id(1) % groups
    blocks = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    block_ok = blocks < n_blocks
    head = tl.arange(0, HEADS_PAD)
    query_ptr += batch * stride_query_b + group * stride_query_g
    block_max_ptr += batch.to(tl.int64) * stride_max_b + group.to(tl.int64) * stride_max_g
    block_min_ptr += batch.to(tl.int64) * stride_min_b + group.to(tl.int64) * stride_min_g
    scores = tl.zeros([BLOCK_N], tl.float32)
    for channel_begin in tl.static_range(0, KEY_WIDTH, BLOCK_D):
        channels = channel_begin + tl.arange(0, BLOCK_D)
        channel_ok = channels < KEY_WIDTH
        query = tl.load(
            query_ptr + head[:, None] * stride_query_h + channels[None, :],
            mask=(head < heads)[:, None] & channel_ok[None, :],
            other=0.0,
        ).to(tl.float32)
        query_pos = tl.sum(tl.maximum(query, 0.0), axis=0)
        query_neg = tl.sum(tl.minimum(query, 0.0), axis=0)
        tile_mask = block_ok[:, None] & channel_ok[None, :]
        tile_max = tl.load(block_max_ptr + blocks[:, None] * stride_max_n + channels[None, :], tile_mask, other=0.0)
        tile_min = tl.load(block_min_ptr + blocks[:, None] * stride_min_n + channels[None, :], tile_mask, other=0.0)
        scores += tl.sum(
            tile_max.to(tl.float32) * query_pos[None, :] + tile_min.to(tl.float32) * query_neg[None, :], axis=1
        )
    valid = tl.load(block_valid_ptr + batch * stride_valid_b + blocks * stride_valid_n, mask=block_ok, other=0)
    scores = tl.where(valid != 0, scores, float("-inf"))
    tl.store(scores_ptr + batch * stride_scores_b + group * stride_scores_g + blocks, scores, mask=block_ok)


def block_scores(
    query: torch.Tensor, block_max: torch.Tensor, block_min: torch.Tensor, block_valid: torch.Tensor
) -> torch.Tensor:
    """query [B, NG, G, Dk]; block_max, block_min [B, NG, NB, Dk]; block_valid [B, NB] bool -> [B, NG, NB] float32."""
    check_float("query", query, 4)
    check_float("block_max", block_max, 4)
    check_float("block_min", block_min, 4)
    check_same_device(query=query, block_max=block_max, block_min=block_min, block_valid=block_valid)
    batch, groups, heads, key_width = query.shape
    n_blocks = block_max.shape[2]
    require(block_max.shape == block_min.shape, "block_max and block_min must have the same shape")
    require(
        block_max.shape[:2] == (batch, groups) and block_max.shape[3] == key_width,
        f"block summaries {tuple(block_max.shape)} do not match query {tuple(query.shape)}",
    )
    require(
        block_valid.shape == (batch, n_blocks) and block_valid.dtype == torch.bool, "block_valid must be [B, NB] bool"
    )
    require(heads <= 128, f"at most 128 query heads per group, got {heads}")
    scores = torch.empty(batch, groups, n_blocks, dtype=torch.float32, device=query.device)
    block_n = 64
    grid = (triton.cdiv(n_blocks, block_n), batch * groups)
    _block_scores_kernel[grid](
        query,
        block_max,
        block_min,
        block_valid.view(torch.uint8),
        scores,
        groups,
        heads,
        n_blocks,
        *query.stride()[:3],
        *block_max.stride()[:3],
        *block_min.stride()[:3],
        *block_valid.stride(),
        *scores.stride()[:2],
        KEY_WIDTH=key_width,
        HEADS_PAD=triton.next_power_of_2(heads),
        BLOCK_N=block_n,
        BLOCK_D=min(triton.next_power_of_2(key_width), 64),
    )
    return scores
