"""Triton kernels of `sparse_attention`: split-K flash decoding over each group's selected slots.

One program serves a whole KV group: every K/V row it loads by slot index is shared by the group's G query
heads (GQA: G = 1..8; MLA: all 20 heads, keys 576 wide, values a strided view keys[..., :512]). The selected
slots [B, NG, N] are cut into `num_splits` contiguous pieces; each piece keeps an online softmax in float32
and, when there is more than one piece, a second kernel combines the pieces' partial outputs.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import (
    check_float,
    check_index,
    check_same_device,
    dot_operands_in_fp32,
    dot_precision,
    multiprocessor_count,
    require,
)

# Running max before any valid slot: finite, so exp2(_EMPTY_MAX - _EMPTY_MAX) is 1 rather than NaN.
_EMPTY_MAX = tl.constexpr(-1.0e30)
_MAX_SPLITS = 32


@triton.jit
def _sparse_attention_split_kernel(
    query_ptr,
    keys_ptr,
    values_ptr,
    slots_ptr,
    valid_ptr,
    output_ptr,
    partial_output_ptr,
    partial_max_ptr,
    partial_sum_ptr,
    groups,
    heads,
    n_slots,
    slots_per_split,
    scale_log2,
    stride_query_b,
    stride_query_g,
    stride_query_h,
    stride_keys_b,
    stride_keys_g,
    stride_keys_s,
    stride_values_b,
    stride_values_g,
    stride_values_s,
    stride_slots_b,
    stride_slots_g,
    stride_slots_n,
    stride_valid_b,
    stride_valid_g,
    stride_valid_n,
    stride_output_b,
    stride_output_g,
    stride_output_h,
    KEY_WIDTH: tl.constexpr,
    VALUE_WIDTH: tl.constexpr,
    HEADS_PAD: tl.constexpr,
    VALUE_PAD: tl.constexpr,
    BLOCK_D: tl.constexpr,
    BLOCK_N: tl.constexpr,
    SPLIT: tl.constexpr,
    DOT_IN_FP32: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    """Grid (num_splits, B * NG): attention of one group's heads over one piece of its selected slots.

    SPLIT: write the unnormalised partial output [HEADS, Dv] with its running max and sum (log2 domain) to the
    partial buffers [B * NG, num_splits, G(, Dv)]; otherwise write the normalised output directly.
    """
    split = tl.program_id(0)
    row_group = tl.program_id(1)
    batch = row_group // groups
    group = row_group % groups
    head = tl.arange(0, HEADS_PAD)
    head_ok = head < heads
    value_columns = tl.arange(0, VALUE_PAD)
    value_ok = value_columns < VALUE_WIDTH
    query_ptr += batch * stride_query_b + group * stride_query_g + head[:, None] * stride_query_h
    keys_ptr += batch.to(tl.int64) * stride_keys_b + group.to(tl.int64) * stride_keys_g
    values_ptr += batch.to(tl.int64) * stride_values_b + group.to(tl.int64) * stride_values_g
    slots_ptr += batch * stride_slots_b + group * stride_slots_g
    valid_ptr += batch * stride_valid_b + group * stride_valid_g

    running_max = tl.full([HEADS_PAD], _EMPTY_MAX, tl.float32)
    running_sum = tl.zeros([HEADS_PAD], tl.float32)
    accumulator = tl.zeros([HEADS_PAD, VALUE_PAD], tl.float32)
    begin = split * slots_per_split
    end = tl.minimum(begin + slots_per_split, n_slots)
    for tile_begin in range(begin, end, BLOCK_N):
        entries = tile_begin + tl.arange(0, BLOCK_N)
        in_piece = entries < end
        slots = tl.load(slots_ptr + entries * stride_slots_n, mask=in_piece, other=0).to(tl.int64)
        used = in_piece & (tl.load(valid_ptr + entries * stride_valid_n, mask=in_piece, other=0) != 0)
        scores = tl.zeros([HEADS_PAD, BLOCK_N], tl.float32)
        for channel_begin in tl.static_range(0, KEY_WIDTH, BLOCK_D):
            channels = channel_begin + tl.arange(0, BLOCK_D)
            channel_ok = channels < KEY_WIDTH
            query = tl.load(query_ptr + channels[None, :], mask=head_ok[:, None] & channel_ok[None, :], other=0.0)
            keys = tl.load(
                keys_ptr + slots[:, None] * stride_keys_s + channels[None, :],
                mask=used[:, None] & channel_ok[None, :],
                other=0.0,
            )
            if DOT_IN_FP32:
                query = query.to(tl.float32)
                keys = keys.to(tl.float32)
            scores += tl.dot(query, tl.trans(keys), input_precision=DOT_PRECISION)
        scores = tl.where(used[None, :], scores * scale_log2, float("-inf"))
        new_max = tl.maximum(running_max, tl.max(scores, axis=1))
        correction = tl.exp2(running_max - new_max)
        probs = tl.exp2(scores - new_max[:, None])
        running_sum = running_sum * correction + tl.sum(probs, axis=1)
        values = tl.load(
            values_ptr + slots[:, None] * stride_values_s + value_columns[None, :],
            mask=used[:, None] & value_ok[None, :],
            other=0.0,
        )
        if DOT_IN_FP32:
            values = values.to(tl.float32)
        accumulator = accumulator * correction[:, None] + tl.dot(
            probs.to(values.dtype), values, input_precision=DOT_PRECISION
        )
        running_max = new_max

    store_mask = head_ok[:, None] & value_ok[None, :]
    if SPLIT:
        stat_offset = (row_group * tl.num_programs(0) + split) * heads + head
        tl.store(partial_max_ptr + stat_offset, running_max, mask=head_ok)
        tl.store(partial_sum_ptr + stat_offset, running_sum, mask=head_ok)
        tl.store(
            partial_output_ptr + stat_offset.to(tl.int64)[:, None] * VALUE_WIDTH + value_columns[None, :],
            accumulator,
            mask=store_mask,
        )
    else:
        output = accumulator / running_sum[:, None]
        output_ptr += batch * stride_output_b + group * stride_output_g
        tl.store(
            output_ptr + head[:, None] * stride_output_h + value_columns[None, :],
            output.to(output_ptr.dtype.element_ty),
            mask=store_mask,
        )


@triton.jit
def _combine_splits_kernel(
    partial_output_ptr,
    partial_max_ptr,
    partial_sum_ptr,
    output_ptr,
    groups,
    heads,
    num_splits,
    stride_output_b,
    stride_output_g,
    stride_output_h,
    VALUE_WIDTH: tl.constexpr,
    VALUE_PAD: tl.constexpr,
    SPLITS_PAD: tl.constexpr,
):
    """Grid (B * NG, G): rescale each piece's partial output to the overall max and normalise."""
    row_group = tl.program_id(0)
    head = tl.program_id(1)
    split = tl.arange(0, SPLITS_PAD)
    split_ok = split < num_splits
    stat_offset = (row_group * num_splits + split) * heads + head
    split_max = tl.load(partial_max_ptr + stat_offset, mask=split_ok, other=float("-inf"))
    split_sum = tl.load(partial_sum_ptr + stat_offset, mask=split_ok, other=0.0)
    weight = tl.exp2(split_max - tl.max(split_max, axis=0))
    total = tl.sum(weight * split_sum, axis=0)
    value_columns = tl.arange(0, VALUE_PAD)
    value_ok = value_columns < VALUE_WIDTH
    partial = tl.load(
        partial_output_ptr + stat_offset.to(tl.int64)[:, None] * VALUE_WIDTH + value_columns[None, :],
        mask=split_ok[:, None] & value_ok[None, :],
        other=0.0,
    )
    output = tl.sum(partial * weight[:, None], axis=0) / total
    batch = row_group // groups
    group = row_group % groups
    output_ptr += batch * stride_output_b + group * stride_output_g + head * stride_output_h
    tl.store(output_ptr + value_columns, output.to(output_ptr.dtype.element_ty), mask=value_ok)


def default_num_splits(
    rows: int, n_slots: int, block_n: int, partial_bytes: int, tile_bytes: int, device: torch.device
) -> int:
    """Pieces per group: enough programs to give every SM about four, while each piece still reads at least
    four times more K/V (tile_bytes per BLOCK_N slots) than the partial result it writes (partial_bytes)."""
    tiles = triton.cdiv(n_slots, block_n)
    min_tiles_per_split = triton.cdiv(4 * partial_bytes, tile_bytes)
    wanted = triton.cdiv(4 * multiprocessor_count(device), rows)
    return max(1, min(wanted, tiles // min_tiles_per_split, _MAX_SPLITS))


def sparse_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    valid: torch.Tensor,
    scaling: float,
    num_splits: int | None = None,
) -> torch.Tensor:
    """Softmax attention of each group's heads over its selected slots (float32 softmax and sums).

    query [B, NG, G, Dk]; keys [B, NG, S, Dk]; values [B, NG, S, Dv] (may be a view of keys); slots [B, NG, N]
    int32/int64; valid [B, NG, N] bool (invalid entries ignored). num_splits: pieces per group (None picks one
    from the device's SM count). Returns [B, NG, G, Dv] in the query's dtype.
    """
    check_float("query", query, 4)
    check_float("keys", keys, 4)
    check_float("values", values, 4)
    batch, groups, heads, key_width = query.shape
    value_width = values.shape[3]
    n_slots = slots.shape[-1]
    check_index("slots", slots, (batch, groups, n_slots))
    require(valid.shape == slots.shape and valid.dtype == torch.bool, "valid must be a bool tensor shaped like slots")
    require(keys.dtype == query.dtype and values.dtype == query.dtype, "query, keys and values must share a dtype")
    require(keys.shape[:2] == (batch, groups) and keys.shape[3] == key_width, "keys must be [B, NG, S, Dk]")
    require(values.shape[:3] == keys.shape[:3], "values must be [B, NG, S, Dv] with the keys' S")
    check_same_device(query=query, keys=keys, values=values, slots=slots, valid=valid)
    heads_pad = max(16, triton.next_power_of_2(heads))
    value_pad = max(16, triton.next_power_of_2(value_width))
    require(heads <= 64, f"at most 64 query heads per KV group, got {heads}")
    require(
        key_width <= 1024 and value_width <= 512,
        f"key width must be <= 1024 and value width <= 512, got {key_width} and {value_width}",
    )
    require(heads_pad * value_pad <= 16384, f"{heads} heads x value width {value_width} exceed the accumulator")
    require(num_splits is None or num_splits >= 1, f"num_splits must be >= 1, got {num_splits}")
    require(n_slots > 0, "sparse attention needs at least one slot per group")

    wide = heads_pad * value_pad > 4096
    block_n = 32 if wide else 64
    if num_splits is None:
        element = query.element_size()
        num_splits = default_num_splits(
            batch * groups, n_slots, block_n, heads * value_width * 4, block_n * (key_width + value_width) * element,
            query.device,
        )
    num_splits = min(num_splits, triton.cdiv(n_slots, block_n))
    slots_per_split = triton.cdiv(triton.cdiv(n_slots, num_splits), block_n) * block_n
    num_splits = triton.cdiv(n_slots, slots_per_split)

    output = torch.empty(batch, groups, heads, value_width, dtype=query.dtype, device=query.device)
    split = num_splits > 1
    if split:
        partial_output = torch.empty(batch * groups, num_splits, heads, value_width, dtype=torch.float32,
                                     device=query.device)
        partial_max = torch.empty(batch * groups, num_splits, heads, dtype=torch.float32, device=query.device)
        partial_sum = torch.empty_like(partial_max)
    else:
        partial_output = partial_max = partial_sum = output
    _sparse_attention_split_kernel[(num_splits, batch * groups)](
        query,
        keys,
        values,
        slots,
        valid.view(torch.uint8),
        output,
        partial_output,
        partial_max,
        partial_sum,
        groups,
        heads,
        n_slots,
        slots_per_split,
        scaling * math.log2(math.e),
        *query.stride()[:3],
        *keys.stride()[:3],
        *values.stride()[:3],
        *slots.stride(),
        *valid.stride(),
        *output.stride()[:3],
        KEY_WIDTH=key_width,
        VALUE_WIDTH=value_width,
        HEADS_PAD=heads_pad,
        VALUE_PAD=value_pad,
        BLOCK_D=64 if key_width > 128 else max(16, triton.next_power_of_2(key_width)),
        BLOCK_N=block_n,
        SPLIT=split,
        DOT_IN_FP32=dot_operands_in_fp32(query.dtype),
        DOT_PRECISION=dot_precision(query.dtype),
        num_warps=8 if wide else 4,
    )
    if split:
        _combine_splits_kernel[(batch * groups, heads)](
            partial_output,
            partial_max,
            partial_sum,
            output,
            groups,
            heads,
            num_splits,
            *output.stride()[:3],
            VALUE_WIDTH=value_width,
            VALUE_PAD=value_pad,
            SPLITS_PAD=triton.next_power_of_2(num_splits),
        )
    return output
