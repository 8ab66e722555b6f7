"""Triton kernels of the top-k selections: `select_top_k` and the fused token stage `select_tokens_into`.

One program selects the k largest of the n scores of one row. Scores map to uint32 keys whose unsigned order is
the scores' (positives get their sign bit set, negatives all their bits inverted). The row is narrowed in levels;
each level takes the range [low, high] of its entries (-inf left out), then streams the entries in tiles:
    1. a histogram of buckets: 0 for -inf, the others splitting [low, high] evenly; its suffix sums give the
       bucket holding the k-th largest;
    2. entries of higher buckets go to the output, that bucket's entries (the survivors) to the front of a scratch
       list as (key, index).
The first level splits the range of the finite scores (a bell-shaped row of a few thousand scores keeps a few
hundred survivors); later levels split the survivors' key range, which is even in the exponent and then in the
mantissa, so that any spread of scores, outliers included, narrows by about BUCKETS per level.
Levels go on until at most RANK_LIMIT survivors are left or they are all equal; then each survivor's rank is
counted against all the others (equal keys by list order), or equal survivors are taken in list order. Output
positions of a tile come from a prefix sum within it plus the counts of the tiles before. Every step reads global
memory; a row of a few thousand scores stays in L2.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import check_index, check_same_device, require

BUCKETS = 128
MAX_TILE = 8192
SURVIVOR_TILE = 1024
RANK_LIMIT = 128
# Two counts within a tile share one int32 prefix sum, 16 bits each.
_TILE_LIMIT = 1 << 14
_RANK_CHUNK = tl.constexpr(32)
_MINUS_INF_KEY = tl.constexpr(0x007FFFFF)


@triton.jit
def _order_keys(scores):
    """float32 scores -> uint32 keys in the same order (-0.0 just below +0.0; -inf is _MINUS_INF_KEY)."""
    bits = scores.to(tl.uint32, bitcast=True)
    return tl.where((bits >> 31) != 0, ~bits, bits | 0x80000000)


@triton.jit
def _scores_of_keys(keys):
    """Inverse of _order_keys."""
    bits = tl.where((keys >> 31) != 0, keys ^ 0x80000000, ~keys)
    return bits.to(tl.float32, bitcast=True)


@triton.jit
def _sum3(a_0, a_1, a_2, b_0, b_1, b_2):
    return a_0 + b_0, a_1 + b_1, a_2 + b_2


@triton.jit
def _load_entries(scores_ptr, survivors_ptr, start, count, TILE: tl.constexpr, FROM_ROW: tl.constexpr):
    """Entries start .. start + TILE - 1 of the row's scores (FROM_ROW) or of the survivor list, `count` long.

    Returns (entry [TILE], in range, keys uint32, scores float32, index int32 into the row).
    """
    entry = start + tl.arange(0, TILE)
    in_range = entry < count
    if FROM_ROW:
        scores = tl.load(scores_ptr + entry, mask=in_range, other=0.0)
        keys = _order_keys(scores)
        index = entry
    else:
        packed = tl.load(survivors_ptr + entry, mask=in_range, other=0, cache_modifier=".cg")
        keys = (packed >> 32).to(tl.uint32)
        scores = _scores_of_keys(keys)
        index = (packed & 0xFFFFFFFF).to(tl.int32)
    return entry, in_range, keys, scores, index


@triton.jit
def _key_range(survivors_ptr, count, TILE: tl.constexpr):
    """Smallest and largest key of the first `count` survivors, -inf left out (high < low when all are -inf)."""
    low = tl.full([], 0xFFFFFFFF, tl.uint32)
    high = tl.full([], 0, tl.uint32)
    for start in range(0, count, TILE):
        entry, in_range, keys, scores, index = _load_entries(survivors_ptr, survivors_ptr, start, count, TILE, False)
        counted = in_range & (keys != _MINUS_INF_KEY)
        low = tl.minimum(low, tl.min(tl.where(counted, keys, 0xFFFFFFFF)))
        high = tl.maximum(high, tl.max(tl.where(counted, keys, 0)))
    return low, high


@triton.jit
def _score_range(scores_ptr, n, TILE: tl.constexpr):
    """Smallest and largest finite score of the row; (0, 0) when they do not span a finite positive range."""
    low = tl.full([], float("inf"), tl.float32)
    high = tl.full([], float("-inf"), tl.float32)
    for start in range(0, n, TILE):
        entry, in_range, keys, scores, index = _load_entries(scores_ptr, scores_ptr, start, n, TILE, True)
        finite = in_range & (scores > float("-inf")) & (scores < float("inf"))
        low = tl.minimum(low, tl.min(tl.where(finite, scores, float("inf"))))
        high = tl.maximum(high, tl.max(tl.where(finite, scores, float("-inf"))))
    spread = (high > low) & (high - low < float("inf"))
    return tl.where(spread, low, 0.0), tl.where(spread, high, 0.0)


@triton.jit
def _buckets(keys, scores, low, high, scale, BUCKETS: tl.constexpr, BY_SCORE: tl.constexpr):
    """Bucket of each entry, never lower for a higher key: 0 for -inf, else 1 + (x - low) * scale, at most
    BUCKETS - 1, for x the score clamped to [low, high] (BY_SCORE) or the key (keys other than -inf are at least
    `low`)."""
    if BY_SCORE:
        spread = (tl.minimum(tl.maximum(scores, low), high) - low) * scale
    else:
        spread = (keys - low).to(tl.float32) * scale
    return tl.where(keys == _MINUS_INF_KEY, 0, 1 + tl.minimum(spread, BUCKETS - 2).to(tl.int32))


@triton.jit
def _store_selected(
    out_ptr, extra_ptr, candidates_ptr, positions, selected, scores, index, GATHER: tl.constexpr
):
    """Write selected entries at their positions: values / indices, or (GATHER) candidate slots / validity."""
    if GATHER:
        slots = tl.load(candidates_ptr + index, mask=selected)
        tl.store(out_ptr + positions, slots.to(tl.int64), mask=selected)
        tl.store(extra_ptr + positions, (scores > float("-inf")).to(tl.uint8), mask=selected)
    else:
        tl.store(out_ptr + positions, scores, mask=selected)
        tl.store(extra_ptr + positions, index.to(tl.int64), mask=selected)


@triton.jit
def _narrow(
    scores_ptr,
    survivors_ptr,
    out_ptr,
    extra_ptr,
    candidates_ptr,
    count,
    wanted,
    written,
    low,
    high,
    FROM_ROW: tl.constexpr,
    GATHER: tl.constexpr,
    BUCKETS: tl.constexpr,
    TILE: tl.constexpr,
):
    """One level: of `count` entries (the row, or the survivor list) of which the `wanted` largest are still to be
    written after the first `written` outputs, write those of buckets above the one holding the wanted-th largest
    and move that bucket's entries to the front of the survivor list (in place: an entry only moves down).
    low, high: the row's finite score range (FROM_ROW, _score_range) or the survivors' key range (_key_range);
    buckets split the scores of the row, the keys of the survivors.

    Returns the survivors' (count, wanted, written).
    """
    if FROM_ROW:
        scale = tl.where(high > low, (BUCKETS - 1) / tl.where(high > low, high - low, 1.0), 0.0)
    else:
        scale = tl.where(high > low, (BUCKETS - 1) / tl.maximum(high - low, 1).to(tl.float32), 0.0)
    histogram = tl.zeros([BUCKETS], tl.int32)
    for start in range(0, count, TILE):
        entry, in_range, keys, scores, index = _load_entries(scores_ptr, survivors_ptr, start, count, TILE, FROM_ROW)
        buckets = _buckets(keys, scores, low, high, scale, BUCKETS, FROM_ROW)
        histogram += tl.histogram(buckets, BUCKETS, mask=in_range)
    bins = tl.arange(0, BUCKETS)
    above = count - tl.cumsum(histogram, 0)  # entries in higher buckets
    holds = (above < wanted) & (above + histogram >= wanted)
    bucket, above_kth, survivor_count = tl.reduce(
        (tl.where(holds, bins, 0), tl.where(holds, above, 0), tl.where(holds, histogram, 0)), 0, _sum3
    )

    above_before = written  # entries written and survivors kept by the tiles before
    survivors_before = tl.zeros([], tl.int32)
    for start in range(0, count, TILE):
        entry, in_range, keys, scores, index = _load_entries(scores_ptr, survivors_ptr, start, count, TILE, FROM_ROW)
        buckets = _buckets(keys, scores, low, high, scale, BUCKETS, FROM_ROW)
        is_above = in_range & (buckets > bucket)
        survivor = in_range & (buckets == bucket)
        flags = is_above.to(tl.int32) + (survivor.to(tl.int32) << 16)  # two counts in one prefix sum
        ranks = tl.cumsum(flags, 0) - flags
        _store_selected(
            out_ptr, extra_ptr, candidates_ptr, above_before + (ranks & 0xFFFF), is_above, scores, index, GATHER
        )
        tl.store(
            survivors_ptr + survivors_before + (ranks >> 16), (keys.to(tl.int64) << 32) | index, mask=survivor
        )
        tile_counts = tl.sum(flags)
        above_before += tile_counts & 0xFFFF
        survivors_before += tile_counts >> 16
    tl.debug_barrier()  # survivors written by every thread are read by every thread
    return survivor_count, wanted - above_kth, written + above_kth


@triton.jit
def _select_row(
    scores_ptr,
    survivors_ptr,
    out_ptr,
    extra_ptr,
    candidates_ptr,
    n,
    k,
    GATHER: tl.constexpr,
    BUCKETS: tl.constexpr,
    TILE: tl.constexpr,
    SURVIVOR_TILE: tl.constexpr,
    RANK_LIMIT: tl.constexpr,
):
    """The k largest of the n float32 scores at scores_ptr (0 < k <= n) to out_ptr / extra_ptr [k] (see
    _store_selected); survivors_ptr: scratch for n int64."""
    low, high = _score_range(scores_ptr, n, TILE)
    count, wanted, written = _narrow(
        scores_ptr, survivors_ptr, out_ptr, extra_ptr, candidates_ptr, n, tl.zeros([], tl.int32) + k,
        tl.zeros([], tl.int32), low, high, True, GATHER, BUCKETS, TILE,
    )
    all_equal = tl.zeros([], tl.int32)  # the survivors are all -inf or all one score
    while (count > RANK_LIMIT) & (all_equal == 0):
        low_key, high_key = _key_range(survivors_ptr, count, SURVIVOR_TILE)
        if high_key <= low_key:
            all_equal = tl.full([], 1, tl.int32)
        else:
            count, wanted, written = _narrow(
                scores_ptr, survivors_ptr, out_ptr, extra_ptr, candidates_ptr, count, wanted, written, low_key,
                high_key, False, GATHER, BUCKETS, SURVIVOR_TILE,
            )

    if all_equal != 0:  # any `wanted` of them: the first ones
        for start in range(0, wanted, SURVIVOR_TILE):
            entry, in_range, keys, scores, index = _load_entries(
                scores_ptr, survivors_ptr, start, wanted, SURVIVOR_TILE, False
            )
            _store_selected(out_ptr, extra_ptr, candidates_ptr, written + entry, in_range, scores, index, GATHER)
    else:  # rank of each survivor: the survivors above it, equal ones earlier in the list included
        entry, in_range, keys, scores, index = _load_entries(scores_ptr, survivors_ptr, 0, count, RANK_LIMIT, False)
        rank = tl.zeros([RANK_LIMIT], tl.int32)
        for start in range(0, count, _RANK_CHUNK):
            other, other_in_range, other_keys, other_scores, other_index = _load_entries(
                scores_ptr, survivors_ptr, start, count, _RANK_CHUNK, False
            )
            beats = (other_keys[None, :] > keys[:, None]) | (
                (other_keys[None, :] == keys[:, None]) & (other[None, :] < entry[:, None])
            )
            rank += tl.sum((beats & other_in_range[None, :]).to(tl.int32), axis=1)
        selected = in_range & (rank < wanted)
        _store_selected(out_ptr, extra_ptr, candidates_ptr, written + rank, selected, scores, index, GATHER)


@triton.jit
def _select_top_k_kernel(
    scores_ptr,
    survivors_ptr,
    values_ptr,
    indices_ptr,
    n,
    k,
    BUCKETS: tl.constexpr,
    TILE: tl.constexpr,
    SURVIVOR_TILE: tl.constexpr,
    RANK_LIMIT: tl.constexpr,
):
    """Grid (R,): scores [R, n] float32 -> values [R, k] float32 and indices [R, k] int64; survivors [R, n] int64
    scratch. All contiguous."""
    row = tl.program_id(0).to(tl.int64)
    _select_row(
        scores_ptr + row * n, survivors_ptr + row * n, values_ptr + row * k, indices_ptr + row * k, scores_ptr,
        n, k, False, BUCKETS, TILE, SURVIVOR_TILE, RANK_LIMIT,
    )


@triton.jit
def _select_tokens_kernel(
    scores_ptr,
    candidates_ptr,
    fixed_slots_ptr,
    fixed_valid_ptr,
    survivors_ptr,
    slots_ptr,
    valid_ptr,
    groups,
    n,
    k,
    n_fixed,
    stride_scores_b,
    stride_scores_g,
    stride_candidates_b,
    stride_candidates_g,
    stride_fixed_slots_b,
    stride_fixed_valid_b,
    stride_slots_b,
    stride_slots_g,
    stride_valid_b,
    stride_valid_g,
    FIXED_PAD: tl.constexpr,
    BUCKETS: tl.constexpr,
    TILE: tl.constexpr,
    SURVIVOR_TILE: tl.constexpr,
    RANK_LIMIT: tl.constexpr,
):
    """Grid (B * NG,): one row and group. slots, valid [B, NG, F + k]: the row's F fixed slots and their
    validity, then the candidates [B, NG, n] of the k best scores [B, NG, n] with validity score > -inf;
    survivors [B * NG, n] int64 scratch."""
    batch = tl.program_id(0) // groups
    group = tl.program_id(0) % groups
    slots_ptr += batch.to(tl.int64) * stride_slots_b + group.to(tl.int64) * stride_slots_g
    valid_ptr += batch.to(tl.int64) * stride_valid_b + group.to(tl.int64) * stride_valid_g

    fixed = tl.arange(0, FIXED_PAD)
    fixed_ok = fixed < n_fixed
    fixed_slots = tl.load(fixed_slots_ptr + batch * stride_fixed_slots_b + fixed, mask=fixed_ok)
    fixed_valid = tl.load(fixed_valid_ptr + batch * stride_fixed_valid_b + fixed, mask=fixed_ok)
    tl.store(slots_ptr + fixed, fixed_slots.to(tl.int64), mask=fixed_ok)
    tl.store(valid_ptr + fixed, fixed_valid, mask=fixed_ok)

    _select_row(
        scores_ptr + batch.to(tl.int64) * stride_scores_b + group.to(tl.int64) * stride_scores_g,
        survivors_ptr + tl.program_id(0).to(tl.int64) * n,
        slots_ptr + n_fixed,
        valid_ptr + n_fixed,
        candidates_ptr + batch.to(tl.int64) * stride_candidates_b + group.to(tl.int64) * stride_candidates_g,
        n, k, True, BUCKETS, TILE, SURVIVOR_TILE, RANK_LIMIT,
    )


def _launch_shape(n: int, tile: int | None) -> dict:
    """Tile sizes and warps for rows of n scores (tile: scores per step, None picks one from n)."""
    if tile is None:
        tile = min(max(triton.next_power_of_2(n), 16), MAX_TILE)
    require(tile & (tile - 1) == 0 and 16 <= tile <= _TILE_LIMIT, f"tile must be a power of 2 in 16..16384: {tile}")
    return dict(
        BUCKETS=BUCKETS,
        TILE=tile,
        SURVIVOR_TILE=min(tile, SURVIVOR_TILE),
        RANK_LIMIT=RANK_LIMIT,
        num_warps=max(1, min(8, tile // 256)),
    )


def select_top_k(scores: torch.Tensor, k: int, tile: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest entries of each row, in no particular order.

    scores [..., N] float32, contiguous; 0 < k <= N. tile: scores per step (None picks one from N).
    Returns values [..., k] float32 and indices [..., k] int64.
    """
    require(scores.dtype == torch.float32, f"scores must be float32, got {scores.dtype}")
    require(scores.dim() >= 1 and scores.is_contiguous(), "scores must be contiguous")
    n = scores.shape[-1]
    require(0 < k <= n, f"k must be in 1..{n}, got {k}")
    launch = _launch_shape(n, tile)
    values = torch.empty(*scores.shape[:-1], k, dtype=torch.float32, device=scores.device)
    indices = torch.empty(*scores.shape[:-1], k, dtype=torch.int64, device=scores.device)
    rows = scores.numel() // n
    if rows:
        survivors = torch.empty(rows, n, dtype=torch.int64, device=scores.device)
        _select_top_k_kernel[(rows,)](scores, survivors, values, indices, n, k, **launch)
    return values, indices


def select_tokens_into(
    token_scores: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    fixed_slots: torch.Tensor,
    fixed_valid: torch.Tensor,
    tile: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each group's fixed slots followed by its k best candidates, in one launch.

    token_scores [B, NG, N] float32; candidates [B, NG, N] int32/int64; 0 < k <= N; fixed_slots [B, F]
    int32/int64 and fixed_valid [B, F] bool, the same for every group. tile: as in select_top_k.
    Returns slots [B, NG, F + k] int64 and valid [B, NG, F + k] bool (a selected slot is valid when its score
    is above -inf); the k selected come in no particular order.
    """
    require(
        token_scores.dim() == 3 and token_scores.dtype == torch.float32 and token_scores.stride(-1) == 1,
        "token_scores must be [B, NG, N] float32 with a contiguous last dimension",
    )
    batch, groups, n = token_scores.shape
    check_index("candidates", candidates, (batch, groups, n))
    require(candidates.stride(-1) == 1, "candidates needs a contiguous last dimension")
    n_fixed = fixed_slots.shape[-1]
    check_index("fixed_slots", fixed_slots, (batch, n_fixed))
    require(
        fixed_valid.shape == fixed_slots.shape and fixed_valid.dtype == torch.bool,
        "fixed_valid must be a bool tensor shaped like fixed_slots",
    )
    require(fixed_slots.stride(-1) == 1 and fixed_valid.stride(-1) == 1, "fixed slots need a contiguous last dim")
    require(0 < k <= n, f"k must be in 1..{n}, got {k}")
    check_same_device(token_scores=token_scores, candidates=candidates, fixed_slots=fixed_slots,
                      fixed_valid=fixed_valid)
    launch = _launch_shape(n, tile)
    slots = torch.empty(batch, groups, n_fixed + k, dtype=torch.int64, device=token_scores.device)
    valid = torch.empty(batch, groups, n_fixed + k, dtype=torch.bool, device=token_scores.device)
    if batch * groups:
        survivors = torch.empty(batch * groups, n, dtype=torch.int64, device=token_scores.device)
        _select_tokens_kernel[(batch * groups,)](
            token_scores,
            candidates,
            fixed_slots,
            fixed_valid.view(torch.uint8),
            survivors,
            slots,
            valid.view(torch.uint8),
            groups,
            n,
            k,
            n_fixed,
            *token_scores.stride()[:2],
            *candidates.stride()[:2],
            fixed_slots.stride(0),
            fixed_valid.stride(0),
            *slots.stride()[:2],
            *valid.stride()[:2],
            FIXED_PAD=triton.next_power_of_2(max(n_fixed, 1)),
            **launch,
        )
    return slots, valid
