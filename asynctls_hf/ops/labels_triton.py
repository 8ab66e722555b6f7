"""Triton kernels of the token labels: `quantize_labels`, a decode token's label written in place
(`append_token_labels`), and label scoring of candidate slots.

Quantization is asymmetric per token: value ~= code * scale + zero with zero the minimum, 4-bit codes packed
two per byte (channel 2i in the low nibble), 8-bit codes one per byte, and 16 bits keeping the values in the
key dtype (scale 1, zero 0). Scoring reads each candidate's codes, scale and zero straight from the layer
storage by slot index and computes scale * (q . codes) + zero * sum(q), never gathering a copy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import FLOAT_DTYPES, check_index, check_same_device, require

LABEL_BITS = (4, 8, 16)


@triton.jit
def _round_half_even(x):
    """torch.round: to the nearest integer, ties to even."""
    below = tl.floor(x)
    fraction = x - below
    below_is_odd = below - 2.0 * tl.floor(below * 0.5) != 0.0
    round_up = (fraction > 0.5) | ((fraction == 0.5) & below_is_odd)
    return tl.where(round_up, below + 1.0, below)


@triton.jit
def _quantize_labels_kernel(
    labels_ptr,
    codes_ptr,
    scale_ptr,
    zero_ptr,
    n_tokens,
    stride_labels,
    stride_codes,
    CHANNELS: tl.constexpr,
    BITS: tl.constexpr,
    COLUMNS_PAD: tl.constexpr,
    BLOCK_T: tl.constexpr,
):
    """Grid (token tiles,): labels [T, C] -> codes [T, W], scale [T], zero [T].

    COLUMNS_PAD covers C (8 and 16 bits) or the C / 2 channel pairs (4 bits).
    """
    tokens = tl.program_id(0) * BLOCK_T + tl.arange(0, BLOCK_T)
    token_ok = tokens < n_tokens
    columns = tl.arange(0, COLUMNS_PAD)
    labels_ptr += tokens.to(tl.int64)[:, None] * stride_labels
    codes_ptr += tokens.to(tl.int64)[:, None] * stride_codes
    if BITS == 16:
        mask = token_ok[:, None] & (columns < CHANNELS)[None, :]
        values = tl.load(labels_ptr + columns[None, :], mask=mask)
        tl.store(codes_ptr + columns[None, :], values, mask=mask)
        tl.store(scale_ptr + tokens, tl.full([BLOCK_T], 1.0, tl.float32), mask=token_ok)
        tl.store(zero_ptr + tokens, tl.zeros([BLOCK_T], tl.float32), mask=token_ok)
    else:
        mask = token_ok[:, None] & (columns < (CHANNELS // 2 if BITS == 4 else CHANNELS))[None, :]
        first_columns = 2 * columns if BITS == 4 else columns  # 4 bits: the even channels, then the odd ones
        first = tl.load(labels_ptr + first_columns[None, :], mask=mask, other=0.0).to(tl.float32)
        if BITS == 4:
            second = tl.load(labels_ptr + first_columns[None, :] + 1, mask=mask, other=0.0).to(tl.float32)
        else:
            second = first
        codes, scale, zero = _quantize_tile(first, second, mask, token_ok, BITS)
        tl.store(codes_ptr + columns[None, :], codes, mask=mask)
        tl.store(scale_ptr + tokens, scale, mask=token_ok)
        tl.store(zero_ptr + tokens, zero, mask=token_ok)


@triton.jit
def _quantize_tile(first, second, mask, token_ok, BITS: tl.constexpr):
    """Quantize the tokens (rows) of a tile: 8 bits, first [T, C] holds the label values; 4 bits, first and
    second [T, C / 2] hold channels 2i and 2i + 1. `mask` marks the real entries, token_ok the real rows.
    Returns (codes [T, C or C / 2] uint8, 4-bit ones packed, scale [T], zero [T]) float32."""
    levels = (1 << BITS) - 1
    low = tl.min(tl.where(mask, first, float("inf")), axis=1)
    high = tl.max(tl.where(mask, first, float("-inf")), axis=1)
    if BITS == 4:
        low = tl.minimum(low, tl.min(tl.where(mask, second, float("inf")), axis=1))
        high = tl.maximum(high, tl.max(tl.where(mask, second, float("-inf")), axis=1))
    low = tl.where(token_ok, low, 0.0)  # rows past the end: keep them finite
    high = tl.where(token_ok, high, 0.0)
    scale = tl.math.div_rn(high - low, tl.zeros_like(high) + levels)
    scale = tl.where(scale > 0.0, scale, 1.0)
    codes = _round_half_even(tl.math.div_rn(first - low[:, None], scale[:, None]))
    codes = tl.minimum(tl.maximum(codes, 0.0), levels).to(tl.uint8)
    if BITS == 4:
        odd_codes = _round_half_even(tl.math.div_rn(second - low[:, None], scale[:, None]))
        codes = codes | (tl.minimum(tl.maximum(odd_codes, 0.0), levels).to(tl.uint8) << 4)
    return codes, scale, low


def quantize_labels(channel_keys: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """channel_keys [..., C] (contiguous) -> codes [..., W], scale [...], zero [...] float32."""
    require(bits in LABEL_BITS, f"label bits must be one of {LABEL_BITS}, got {bits}")
    require(channel_keys.dtype in FLOAT_DTYPES, f"labels must be float16, bfloat16 or float32: {channel_keys.dtype}")
    require(channel_keys.dim() >= 1 and channel_keys.is_contiguous(), "channel_keys must be contiguous")
    channels = channel_keys.shape[-1]
    require(0 < channels <= 1024, f"label channels must be in 1..1024, got {channels}")
    require(bits != 4 or channels % 2 == 0, f"4-bit labels need an even channel count, got {channels}")
    leading = channel_keys.shape[:-1]
    labels = channel_keys.view(-1, channels)
    n_tokens = labels.shape[0]
    width = channels // 2 if bits == 4 else channels
    codes = torch.empty(n_tokens, width, dtype=channel_keys.dtype if bits == 16 else torch.uint8, device=labels.device)
    scale = torch.empty(n_tokens, dtype=torch.float32, device=labels.device)
    zero = torch.empty(n_tokens, dtype=torch.float32, device=labels.device)
    if n_tokens:
        block_t = 32
        _quantize_labels_kernel[(triton.cdiv(n_tokens, block_t),)](
            labels,
            codes,
            scale,
            zero,
            n_tokens,
            labels.stride(0),
            codes.stride(0),
            CHANNELS=channels,
            BITS=bits,
            COLUMNS_PAD=triton.next_power_of_2(width),
            BLOCK_T=block_t,
        )
    return codes.view(*leading, width), scale.view(leading), zero.view(leading)


@triton.jit
def _append_token_labels_kernel(
    key_ptr, channels_ptr, codes_ptr, scale_ptr, zero_ptr, slot_ptr,
    groups,
    stride_key_b, stride_key_g,
    stride_channels_b, stride_channels_g,
    stride_codes_b, stride_codes_g, stride_codes_s,
    stride_scale_b, stride_scale_g,
    stride_zero_b, stride_zero_g,
    CHANNELS: tl.constexpr, BITS: tl.constexpr, COLUMNS_PAD: tl.constexpr,
):
    """Grid (B * NG,): the label of the token key [b, g, 0, :] written at `slot` of the label storage."""
    batch_row = tl.program_id(0) // groups
    group = tl.program_id(0) % groups
    slot = tl.load(slot_ptr).to(tl.int64)
    key_ptr += batch_row.to(tl.int64) * stride_key_b + group * stride_key_g
    channels_ptr += batch_row.to(tl.int64) * stride_channels_b + group * stride_channels_g
    codes_ptr += batch_row.to(tl.int64) * stride_codes_b + group * stride_codes_g + slot * stride_codes_s
    scale_ptr += batch_row.to(tl.int64) * stride_scale_b + group * stride_scale_g + slot
    zero_ptr += batch_row.to(tl.int64) * stride_zero_b + group * stride_zero_g + slot
    columns = tl.arange(0, COLUMNS_PAD)[None, :]  # a tile of one token
    token_ok = tl.full([1], 1, tl.int1)
    if BITS == 16:
        mask = columns < CHANNELS
        channels = tl.load(channels_ptr + columns, mask=mask, other=0)
        tl.store(codes_ptr + columns, tl.load(key_ptr + channels, mask=mask), mask=mask)
        tl.store(scale_ptr + tl.arange(0, 1), tl.full([1], 1.0, tl.float32))
        tl.store(zero_ptr + tl.arange(0, 1), tl.zeros([1], tl.float32))
    else:
        mask = columns < (CHANNELS // 2 if BITS == 4 else CHANNELS)
        first_columns = 2 * columns if BITS == 4 else columns
        first_channels = tl.load(channels_ptr + first_columns, mask=mask, other=0)
        first = tl.load(key_ptr + first_channels, mask=mask, other=0.0).to(tl.float32)
        if BITS == 4:
            second_channels = tl.load(channels_ptr + first_columns + 1, mask=mask, other=0)
            second = tl.load(key_ptr + second_channels, mask=mask, other=0.0).to(tl.float32)
        else:
            second = first
        codes, scale, zero = _quantize_tile(first, second, mask, token_ok, BITS)
        tl.store(codes_ptr + columns, codes, mask=mask)
        tl.store(scale_ptr + tl.arange(0, 1), scale)
        tl.store(zero_ptr + tl.arange(0, 1), zero)


def append_token_labels(
    key: torch.Tensor,
    label_channels: torch.Tensor,
    label_codes: torch.Tensor,
    label_scale: torch.Tensor,
    label_zero: torch.Tensor,
    slot: torch.Tensor,
    bits: int,
) -> None:
    """One launch of naive.append_token_labels (shapes there): the label of one decode token at `slot`."""
    require(bits in LABEL_BITS, f"label bits must be one of {LABEL_BITS}, got {bits}")
    require(key.dim() == 4 and key.shape[2] == 1 and key.dtype in FLOAT_DTYPES and key.stride(3) == 1,
            f"key must be [B, NG, 1, Dk] float with a contiguous last dimension, got {tuple(key.shape)}")
    batch, groups = key.shape[:2]
    channels = label_channels.shape[-1]
    check_index("label_channels", label_channels, (batch, groups, channels))
    require(label_channels.stride(2) == 1, "label_channels needs a contiguous last dimension")
    require(bits != 4 or channels % 2 == 0, f"4-bit labels need an even channel count, got {channels}")
    width = channels // 2 if bits == 4 else channels
    require(label_codes.dim() == 4 and label_codes.shape[:2] == (batch, groups) and label_codes.shape[3] == width
            and label_codes.stride(3) == 1, f"label_codes {tuple(label_codes.shape)} do not match {width} columns")
    require(label_codes.dtype == (key.dtype if bits == 16 else torch.uint8), f"label_codes dtype {label_codes.dtype}")
    for name, tensor in (("label_scale", label_scale), ("label_zero", label_zero)):
        require(tensor.dim() == 3 and tensor.shape[:2] == (batch, groups) and tensor.dtype == torch.float32
                and tensor.stride(2) == 1, f"{name} must be [B, NG, S] float32, got {tuple(tensor.shape)}")
    require(slot.numel() == 1 and slot.dtype in (torch.int32, torch.int64), "slot must be one int")
    check_same_device(key=key, label_channels=label_channels, label_codes=label_codes, slot=slot)
    _append_token_labels_kernel[(batch * groups,)](
        key, label_channels, label_codes, label_scale, label_zero, slot, groups,
        *key.stride()[:2], *label_channels.stride()[:2], *label_codes.stride()[:3], *label_scale.stride()[:2],
        *label_zero.stride()[:2], CHANNELS=channels, BITS=bits, COLUMNS_PAD=triton.next_power_of_2(width),
    )


@triton.jit
def _load_label_tile(
    codes_ptr,
    scale_ptr,
    zero_ptr,
    stride_codes_s,
    stride_scale_s,
    stride_zero_s,
    slots,
    slot_ok,
    WIDTH: tl.constexpr,
    BITS: tl.constexpr,
    COLUMNS_PAD: tl.constexpr,
):
    """The labels of storage slots [N] of one row and group (the pointers point at that row and group): codes
    [N, COLUMNS_PAD] float32 (for 4 bits the low nibbles, with the high nibbles second; otherwise the codes twice),
    scale [N] and zero [N] float32. Padded columns and slots not ok are zero."""
    columns = tl.arange(0, COLUMNS_PAD)
    codes = tl.load(
        codes_ptr + slots[:, None] * stride_codes_s + columns[None, :],
        mask=slot_ok[:, None] & (columns < WIDTH)[None, :],
        other=0,
    )
    if BITS == 4:
        codes = codes.to(tl.int32)
        low = (codes & 15).to(tl.float32)
        high = (codes >> 4).to(tl.float32)
    else:
        low = codes.to(tl.float32)
        high = low
    if BITS == 16:
        scale = tl.full(slots.shape, 1.0, tl.float32)
        zero = tl.zeros(slots.shape, tl.float32)
    else:
        scale = tl.load(scale_ptr + slots * stride_scale_s, mask=slot_ok, other=0.0)
        zero = tl.load(zero_ptr + slots * stride_zero_s, mask=slot_ok, other=0.0)
    return low, high, scale, zero


@triton.jit
def _tile_scores(low, high, scale, zero, query_low, query_high, BITS: tl.constexpr):
    """Label scores [N] float32 of a tile from _load_label_tile, for the query on the label channels query_low
    [COLUMNS_PAD] (for 4 bits the even channels, with query_high the odd ones; padded columns zero)."""
    if BITS == 4:
        code_dot = tl.sum(low * query_low[None, :] + high * query_high[None, :], axis=1)
        query_sum = tl.sum(query_low, axis=0) + tl.sum(query_high, axis=0)
    else:
        code_dot = tl.sum(low * query_low[None, :], axis=1)
        query_sum = tl.sum(query_low, axis=0)
    if BITS == 16:
        scores = code_dot
    else:
        scores = scale * code_dot + zero * query_sum
    return scores


def _check_label_storage(
    batch: int, groups: int, channels: int, bits: int, label_codes, label_scale, label_zero
) -> None:
    """label_codes [B, NG, S, W] and label_scale, label_zero [B, NG, S] float32 for C channels of `bits` bits."""
    require(bits in LABEL_BITS, f"label bits must be one of {LABEL_BITS}, got {bits}")
    require(bits != 4 or channels % 2 == 0, f"4-bit labels need an even channel count, got {channels}")
    require(channels <= 1024, f"at most 1024 label channels, got {channels}")
    width = channels // 2 if bits == 4 else channels
    code_dtypes = FLOAT_DTYPES if bits == 16 else (torch.uint8,)
    require(label_codes.dim() == 4 and label_codes.dtype in code_dtypes, f"label_codes must be 4-d {code_dtypes}")
    require(
        label_codes.shape[:2] == (batch, groups) and label_codes.shape[3] == width and label_codes.stride(-1) == 1,
        f"label_codes {tuple(label_codes.shape)} must be [B, NG, S, {width}] with a contiguous last dimension",
    )
    for name, tensor in (("label_scale", label_scale), ("label_zero", label_zero)):
        require(
            tensor.shape == label_codes.shape[:3] and tensor.dtype == torch.float32,
            f"{name} must be [B, NG, S] float32, got {tuple(tensor.shape)} {tensor.dtype}",
        )


@triton.jit
def _candidate_scores_kernel(
    query_ptr,
    label_channels_ptr,
    codes_ptr,
    scale_ptr,
    zero_ptr,
    kept_blocks_ptr,
    kept_scores_ptr,
    candidate_low_ptr,
    candidate_high_ptr,
    candidates_ptr,
    scores_ptr,
    tile_max_ptr,
    tile_sum_ptr,
    scaling,
    groups,
    heads,
    kept_count,
    stride_query_b,
    stride_query_g,
    stride_query_h,
    stride_channels_b,
    stride_channels_g,
    stride_codes_b,
    stride_codes_g,
    stride_codes_s,
    stride_scale_b,
    stride_scale_g,
    stride_scale_s,
    stride_zero_b,
    stride_zero_g,
    stride_zero_s,
    stride_kept_b,
    stride_kept_g,
    stride_kept_k,
    stride_kept_scores_b,
    stride_kept_scores_g,
    stride_kept_scores_k,
    WIDTH: tl.constexpr,
    BITS: tl.constexpr,
    COLUMNS_PAD: tl.constexpr,
    HEADS_PAD: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    TILE: tl.constexpr,
    PER_HEAD: tl.constexpr,
):
    """Grid (candidate tiles, B * NG): TILE candidates (TILE / BLOCK_SIZE kept blocks) of one row and group.

    Writes candidates [B, NG, Kb * BLOCK_SIZE] int64 and scores float32 (both contiguous): the scores of the
    query summed over the group's heads [B, NG, N], or with PER_HEAD each head's scores times `scaling`
    [B, NG, G, N] and, per head and tile, their max and the sum of exp(score - max) ([B, NG, G, tiles] each, for
    _head_mass_kernel); -inf where the kept block's score is -inf or the slot is outside
    [candidate_low[b], candidate_high[b]).
    """
    batch = tl.program_id(1) // groups
    group = tl.program_id(1) % groups
    candidates = tl.program_id(0) * TILE + tl.arange(0, TILE)
    rank = candidates // BLOCK_SIZE
    rank_ok = rank < kept_count
    block = tl.load(
        kept_blocks_ptr + batch * stride_kept_b + group * stride_kept_g + rank * stride_kept_k, mask=rank_ok, other=0
    )
    block_score = tl.load(
        kept_scores_ptr + batch * stride_kept_scores_b + group * stride_kept_scores_g + rank * stride_kept_scores_k,
        mask=rank_ok,
        other=float("-inf"),
    )
    slots = block.to(tl.int64) * BLOCK_SIZE + candidates % BLOCK_SIZE
    candidate_low = tl.load(candidate_low_ptr + batch)
    candidate_high = tl.load(candidate_high_ptr + batch)
    valid = rank_ok & (block_score > float("-inf")) & (slots >= candidate_low) & (slots < candidate_high)

    # The label channels (even / odd channels for 4 bits) and the tile's labels, read once.
    columns = tl.arange(0, COLUMNS_PAD)
    column_ok = columns < WIDTH
    label_channels_ptr += batch * stride_channels_b + group * stride_channels_g
    if BITS == 4:
        channel_low = tl.load(label_channels_ptr + 2 * columns, mask=column_ok, other=0)
        channel_high = tl.load(label_channels_ptr + 2 * columns + 1, mask=column_ok, other=0)
    else:
        channel_low = tl.load(label_channels_ptr + columns, mask=column_ok, other=0)
        channel_high = channel_low
    low, high, scale, zero = _load_label_tile(
        codes_ptr + batch.to(tl.int64) * stride_codes_b + group.to(tl.int64) * stride_codes_g,
        scale_ptr + batch.to(tl.int64) * stride_scale_b + group.to(tl.int64) * stride_scale_g,
        zero_ptr + batch.to(tl.int64) * stride_zero_b + group.to(tl.int64) * stride_zero_g,
        stride_codes_s,
        stride_scale_s,
        stride_zero_s,
        slots,
        valid,
        WIDTH,
        BITS,
        COLUMNS_PAD,
    )
    query_ptr += batch * stride_query_b + group * stride_query_g
    row = (batch * groups + group).to(tl.int64)
    n_candidates = kept_count * BLOCK_SIZE
    tl.store(candidates_ptr + row * n_candidates + candidates, slots, mask=rank_ok)
    if PER_HEAD:
        # Each head's own scaled scores: scores is [B, NG, G, N]; and the tile's softmax partials.
        tiles = tl.num_programs(0)
        for head in range(heads):
            query_low = tl.load(query_ptr + head * stride_query_h + channel_low, mask=column_ok, other=0.0)
            query_high = tl.load(query_ptr + head * stride_query_h + channel_high, mask=column_ok, other=0.0)
            scores = _tile_scores(low, high, scale, zero, query_low.to(tl.float32), query_high.to(tl.float32), BITS)
            scores = tl.where(valid, scores * scaling, float("-inf"))
            tl.store(scores_ptr + (row * heads + head) * n_candidates + candidates, scores, mask=rank_ok)
            tile_max = tl.max(scores, axis=0)
            shift = tl.where(tile_max > float("-inf"), tile_max, 0.0)
            tile_sum = tl.sum(tl.where(valid, tl.exp(scores - shift), 0.0), axis=0)
            partial = (row * heads + head) * tiles + tl.program_id(0)
            tl.store(tile_max_ptr + partial, tile_max)
            tl.store(tile_sum_ptr + partial, tile_sum)
    else:
        # The group's query summed over its heads: scores is [B, NG, N].
        head = tl.arange(0, HEADS_PAD)
        mask = (head < heads)[:, None] & column_ok[None, :]
        head_ptr = query_ptr + head[:, None] * stride_query_h
        query_low = tl.sum(tl.load(head_ptr + channel_low[None, :], mask=mask, other=0.0).to(tl.float32), axis=0)
        query_high = tl.sum(tl.load(head_ptr + channel_high[None, :], mask=mask, other=0.0).to(tl.float32), axis=0)
        scores = _tile_scores(low, high, scale, zero, query_low, query_high, BITS)
        tl.store(scores_ptr + row * n_candidates + candidates, tl.where(valid, scores, float("-inf")), mask=rank_ok)


@triton.jit
def _head_mass_kernel(
    scores_ptr,
    tile_max_ptr,
    tile_sum_ptr,
    out_ptr,
    heads,
    n_candidates,
    tiles,
    HEADS_PAD: tl.constexpr,
    TILES_PAD: tl.constexpr,
    TILE: tl.constexpr,
):
    """Grid (tiles, B * NG): naive.head_mass_scores of TILE candidates of one row and group, from the scaled
    per-head scores [B, NG, G, N] and the per-tile partials [B, NG, G, tiles] of _candidate_scores_kernel; writes
    out [B, NG, N]."""
    row = tl.program_id(1).to(tl.int64)
    head = tl.arange(0, HEADS_PAD)
    head_ok = head < heads
    tile = tl.arange(0, TILES_PAD)
    partial = (row * heads + head[:, None]) * tiles + tile[None, :]
    partial_ok = head_ok[:, None] & (tile < tiles)[None, :]
    tile_max = tl.load(tile_max_ptr + partial, mask=partial_ok, other=float("-inf"))
    tile_sum = tl.load(tile_sum_ptr + partial, mask=partial_ok, other=0.0)
    head_max = tl.max(tile_max, axis=1)
    head_shift = tl.where(head_max > float("-inf"), head_max, 0.0)
    total = tl.sum(tile_sum * tl.exp(tile_max - head_shift[:, None]), axis=1)
    # log of each head's softmax normalizer; 0 for a head without candidates (its scores stay -inf).
    normalizer = tl.where(total > 0.0, head_shift + tl.log(tl.where(total > 0.0, total, 1.0)), 0.0)

    candidates = tl.program_id(0) * TILE + tl.arange(0, TILE)
    candidate_ok = candidates < n_candidates
    log_mass = tl.load(
        scores_ptr + (row * heads + head[:, None]) * n_candidates + candidates[None, :],
        mask=head_ok[:, None] & candidate_ok[None, :],
        other=float("-inf"),
    ) - normalizer[:, None]
    best = tl.max(log_mass, axis=0)
    shift = tl.where(best > float("-inf"), best, 0.0)
    mass_sum = tl.sum(tl.exp(log_mass - shift[None, :]), axis=0)
    mass = tl.where(mass_sum > 0.0, shift + tl.log(tl.where(mass_sum > 0.0, mass_sum, 1.0)), float("-inf"))
    tl.store(out_ptr + row * n_candidates + candidates, mass, mask=candidate_ok)


def candidate_scores(
    query: torch.Tensor,
    label_channels: torch.Tensor,
    label_codes: torch.Tensor,
    label_scale: torch.Tensor,
    label_zero: torch.Tensor,
    kept_blocks: torch.Tensor,
    kept_block_scores: torch.Tensor,
    candidate_low: torch.Tensor,
    candidate_high: torch.Tensor,
    block_size: int,
    bits: int,
    head_scaling: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates of the kept blocks and their label scores in one launch (shapes in naive.candidate_scores);
    with head_scaling each head's scores and softmax partials per tile, then naive.head_mass_scores of them in a
    second launch (_head_mass_kernel).

    query [B, NG, G, Dk]; label_channels [B, NG, C] int; label_codes [B, NG, S, W]; label_scale, label_zero
    [B, NG, S] float32;
    kept_blocks [B, NG, Kb] int; kept_block_scores [B, NG, Kb] float32; candidate_low, candidate_high [B] int.
    Returns candidates [B, NG, Kb * block_size] int64 and scores [B, NG, Kb * block_size] float32.
    """
    require(query.dim() == 4 and query.dtype in FLOAT_DTYPES and query.stride(-1) == 1,
            "query must be [B, NG, G, Dk] float with a contiguous last dimension")
    batch, groups, heads, _ = query.shape
    channels = label_channels.shape[-1]
    check_index("label_channels", label_channels, (batch, groups, channels))
    require(label_channels.stride(-1) == 1, "label_channels needs a contiguous last dimension")
    _check_label_storage(batch, groups, channels, bits, label_codes, label_scale, label_zero)
    kept_count = kept_blocks.shape[-1]
    check_index("kept_blocks", kept_blocks, (batch, groups, kept_count))
    require(kept_block_scores.shape == kept_blocks.shape and kept_block_scores.dtype == torch.float32,
            "kept_block_scores must be float32 shaped like kept_blocks")
    for name, bound in (("candidate_low", candidate_low), ("candidate_high", candidate_high)):
        require(bound.shape == (batch,) and bound.dtype in (torch.int32, torch.int64), f"{name} must be [B] int")
    require(block_size > 0 and block_size & (block_size - 1) == 0, f"block_size must be a power of 2, got {block_size}")
    require(heads <= 128, f"at most 128 query heads per group, got {heads}")
    check_same_device(query=query, label_channels=label_channels, label_codes=label_codes, kept_blocks=kept_blocks,
                      kept_block_scores=kept_block_scores, candidate_low=candidate_low,
                      candidate_high=candidate_high)
    n_candidates = kept_count * block_size
    candidates = torch.empty(batch, groups, n_candidates, dtype=torch.int64, device=query.device)
    per_head = head_scaling is not None
    score_shape = (batch, groups, heads, n_candidates) if per_head else (batch, groups, n_candidates)
    scores = torch.empty(score_shape, dtype=torch.float32, device=query.device)
    tile = max(block_size, 128)
    tiles = triton.cdiv(n_candidates, tile)
    partial_shape = (batch, groups, heads, tiles) if per_head else (1,)
    tile_max = torch.empty(partial_shape, dtype=torch.float32, device=query.device)
    tile_sum = torch.empty(partial_shape, dtype=torch.float32, device=query.device)
    _candidate_scores_kernel[(tiles, batch * groups)](
        query,
        label_channels,
        label_codes,
        label_scale,
        label_zero,
        kept_blocks,
        kept_block_scores,
        candidate_low,
        candidate_high,
        candidates,
        scores,
        tile_max,
        tile_sum,
        1.0 if head_scaling is None else float(head_scaling),
        groups,
        heads,
        kept_count,
        *query.stride()[:3],
        *label_channels.stride()[:2],
        *label_codes.stride()[:3],
        *label_scale.stride(),
        *label_zero.stride(),
        *kept_blocks.stride(),
        *kept_block_scores.stride(),
        WIDTH=label_codes.shape[3],
        BITS=bits,
        COLUMNS_PAD=triton.next_power_of_2(label_codes.shape[3]),
        HEADS_PAD=triton.next_power_of_2(heads),
        BLOCK_SIZE=block_size,
        TILE=tile,
        PER_HEAD=per_head,
    )
    if not per_head:
        return candidates, scores
    mass = torch.empty(batch, groups, n_candidates, dtype=torch.float32, device=query.device)
    _head_mass_kernel[(tiles, batch * groups)](
        scores, tile_max, tile_sum, mass, heads, n_candidates, tiles,
        HEADS_PAD=triton.next_power_of_2(heads), TILES_PAD=triton.next_power_of_2(tiles), TILE=tile,
    )
    return candidates, mass
