"""Naive PyTorch reference of every decode-path op (no transformers import).

These functions define what the Triton kernels must compute. Names used in the shapes:
    B   rows of the batch
    NG  KV groups of a layer (GQA: one per KV head; MLA: one for the whole layer)
    G   query heads per group
    Dk  key width, Dv value width (MLA: 576 and 512)
    S   slots of the cache storage (its capacity)
    NB  blocks considered (a prefix of the block-summary storage)
    C   label channels, W label bytes per token (C/2 for 4 bits, C for 8 bits, C values for 16 bits)
    N   candidate or selected slots per group
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NEG_INF = float("-inf")


def update_block_summaries(
    keys: torch.Tensor,
    block_max: torch.Tensor,
    block_min: torch.Tensor,
    row_start: torch.Tensor,
    slot_begin: int,
    slot_end: int,
    block_size: int,
) -> None:
    """Recompute, in place, the channel-wise max/min of every block overlapping slots [slot_begin, slot_end).

    keys [B, NG, S, Dk] (slots below slot_end are written); block_max, block_min [B, NG, S // block_size, Dk];
    row_start [B] first real slot of each row. Pad slots are left out; a block with no real slot gets zeros
    (block scoring masks it anyway).
    """
    first_block = slot_begin // block_size
    last_block = (slot_end - 1) // block_size + 1
    span_begin = first_block * block_size
    span = keys[:, :, span_begin:slot_end]
    padded_len = (last_block - first_block) * block_size
    span = F.pad(span, (0, 0, 0, padded_len - span.shape[2]))
    slots = torch.arange(span_begin, span_begin + padded_len, device=keys.device)
    real = (slots[None, :] >= row_start[:, None]) & (slots[None, :] < slot_end)  # [B, padded_len]
    real = real[:, None, :, None]
    blocks = (keys.shape[0], keys.shape[1], last_block - first_block, block_size, keys.shape[3])
    span_max = span.masked_fill(~real, NEG_INF).view(blocks).amax(dim=3)
    span_min = span.masked_fill(~real, float("inf")).view(blocks).amin(dim=3)
    any_real = real.view(keys.shape[0], 1, last_block - first_block, block_size, 1).any(dim=3)
    block_max[:, :, first_block:last_block] = torch.where(any_real, span_max, 0)
    block_min[:, :, first_block:last_block] = torch.where(any_real, span_min, 0)


def append_token(
    key: torch.Tensor,
    value: torch.Tensor | None,
    keys: torch.Tensor | None,
    values: torch.Tensor | None,
    block_max: torch.Tensor,
    block_min: torch.Tensor,
    slot: torch.Tensor,
    row_start: torch.Tensor,
    block_size: int,
    ring_keys: torch.Tensor | None = None,
    ring_values: torch.Tensor | None = None,
    ring_offset: int = 0,
    ring_size: int = 1,
) -> None:
    """Write one decode token at `slot` and update its block's summaries, in place, with no host int involved.

    key [B, NG, 1, Dk]; value [B, NG, 1, Dv] or None; keys [B, NG, S, Dk] and values [B, NG, S, Dv] the storage to
    write them to at `slot` (None: not written, e.g. values inside the keys), on the key's device or, for an
    offloaded layer, its pinned host store; ring_keys [B, NG, W, Dk] and ring_values [B, NG, W, Dv], when given,
    get the token at position ring_offset + slot % ring_size too (an offloaded layer's window of recent tokens);
    block_max, block_min [B, NG, S // block_size, Dk]; slot a 0-dim int64 tensor; row_start [B]. The summaries come
    out as update_block_summaries computes them for slots up to `slot`: the block's max/min over its real slots,
    zeros while it has none.
    """
    index = slot.view(1)
    for source, target in ((key, keys), (value, values)):
        if target is not None:
            target.index_copy_(2, index.to(target.device), source.to(target.device, target.dtype))
    position = (ring_offset + slot % ring_size).view(1)
    for source, target in ((key, ring_keys), (value, ring_values)):
        if target is not None:
            target.index_copy_(2, position, source.to(target.dtype))
    key = key.to(block_max.dtype)
    block = index // block_size
    real = (row_start <= slot)[:, None, None, None]
    first_real = (torch.maximum(row_start, block * block_size) == slot)[:, None, None, None]
    for summary, combine in ((block_max, torch.maximum), (block_min, torch.minimum)):
        merged = torch.where(first_real, key, combine(summary.index_select(2, block), key))
        summary.index_copy_(2, block, torch.where(real, merged, 0))


def block_scores(
    query: torch.Tensor, block_max: torch.Tensor, block_min: torch.Tensor, block_valid: torch.Tensor
) -> torch.Tensor:
    """Quest upper bound of each block's score for a group's queries, summed over the group's heads.

    score[b, g, n] = sum_h relu(q_h) . max_n + min(q_h, 0) . min_n, i.e. one GEMM of [q+, q-] against [max; min].
    query [B, NG, G, Dk]; block_max, block_min [B, NG, NB, Dk]; block_valid [B, NB] bool.
    Returns [B, NG, NB] float32, -inf where the block is not valid.
    """
    query = query.float()
    query_pos_neg = torch.cat([query.clamp(min=0).sum(dim=2), query.clamp(max=0).sum(dim=2)], dim=-1)
    summaries = torch.cat([block_max.float(), block_min.float()], dim=-1)  # [B, NG, NB, 2 Dk]
    scores = torch.einsum("bgd,bgnd->bgn", query_pos_neg, summaries)
    return scores.masked_fill(~block_valid[:, None, :], NEG_INF)


def quantize_labels(channel_keys: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Quantize each token's label (its key restricted to the label channels) asymmetrically per token.

    channel_keys [..., C]. Returns codes [..., W], scale [...] and zero [...] (float32), with
    value ~= code * scale + zero. 4-bit codes are packed two per byte (channel 2i in the low nibble);
    16 bits keeps the values in their own dtype (scale 1, zero 0).
    """
    if bits == 16:
        ones = torch.ones(channel_keys.shape[:-1], dtype=torch.float32, device=channel_keys.device)
        return channel_keys.clone(), ones, torch.zeros_like(ones)
    values = channel_keys.float()
    low = values.amin(dim=-1)
    high = values.amax(dim=-1)
    levels = (1 << bits) - 1
    # Divided by a tensor: CUDA PyTorch multiplies by the reciprocal of a Python-number divisor, which rounds
    # differently from a correctly rounded division (the Triton kernel's, and PyTorch's on a CPU).
    scale = (high - low) / torch.full_like(high, levels)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.round((values - low[..., None]) / scale[..., None]).clamp(0, levels).to(torch.uint8)
    if bits == 4:
        codes = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return codes, scale, low


def append_token_labels(
    key: torch.Tensor,
    label_channels: torch.Tensor,
    label_codes: torch.Tensor,
    label_scale: torch.Tensor,
    label_zero: torch.Tensor,
    slot: torch.Tensor,
    bits: int,
) -> None:
    """Write the label of one decode token at `slot`, in place, with no host int involved.

    key [B, NG, 1, Dk]; label_channels [B, NG, C] int64, the channels each (row, group) labels; label_codes
    [B, NG, S, W], label_scale and label_zero [B, NG, S] float32 the label storage; slot a 0-dim int64 tensor.
    The label is quantize_labels of the key's label channels.
    """
    codes, scale, zero = quantize_labels(key.gather(-1, label_channels[:, :, None, :]), bits)
    index = slot.view(1)
    label_codes.index_copy_(2, index, codes)
    label_scale.index_copy_(2, index, scale)
    label_zero.index_copy_(2, index, zero)


def dequantize_labels(codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of quantize_labels: codes [..., W], scale and zero [...] -> float32 [..., C]."""
    if bits == 16:
        return codes.float()
    if bits == 4:
        codes = torch.stack([codes & 0x0F, codes >> 4], dim=-1).flatten(-2)
    return codes.float() * scale[..., None] + zero[..., None]


def label_scores(
    query_channels: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, bits: int
) -> torch.Tensor:
    """Approximate score of candidate tokens from their labels.

    query_channels [B, NG, C] (the group's queries summed over its heads) or [B, NG, G, C] (each head's),
    restricted to the label channels; codes [B, NG, N, W], scale and zero [B, NG, N]. Returns [B, NG, N] or
    [B, NG, G, N] float32.
    """
    labels = dequantize_labels(codes, scale, zero, bits)
    return torch.einsum("bg...c,bgnc->bg...n", query_channels.float(), labels)


def candidate_label_scores(
    query_channels: torch.Tensor,
    label_codes: torch.Tensor,
    label_scale: torch.Tensor,
    label_zero: torch.Tensor,
    candidates: torch.Tensor,
    bits: int,
) -> torch.Tensor:
    """label_scores of candidate slots taken from the label storage.

    query_channels [B, NG, C] or [B, NG, G, C]; label_codes [B, NG, S, W]; label_scale, label_zero [B, NG, S];
    candidates [B, NG, N] int64 slots. Returns [B, NG, N] or [B, NG, G, N] float32.
    """
    codes = label_codes.gather(2, candidates[..., None].expand(-1, -1, -1, label_codes.shape[-1]))
    return label_scores(
        query_channels, codes, label_scale.gather(2, candidates), label_zero.gather(2, candidates), bits
    )


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
    """Token selection's candidates (every slot of the kept blocks) and their label scores, in one op.

    query [B, NG, G, Dk]; label_channels [B, NG, C]; label_codes [B, NG, S, W]; label_scale, label_zero [B, NG, S];
    kept_blocks, kept_block_scores [B, NG, Kb] (block top-k indices and values); candidate_low [B] and
    candidate_high [B] bound the slots that may be picked. Returns candidates [B, NG, Kb * block_size] int64
    (block kept_blocks[k] contributes slots k * block_size ...) and their scores float32, -inf where the block
    score is -inf or the slot is outside [candidate_low, candidate_high) of its row.

    The score of a candidate is the label score of the query summed over the group's heads when head_scaling is
    None; with head_scaling (the attention's softmax scale) it is head_mass_scores of each head's label scores.
    """
    offsets = torch.arange(block_size, device=query.device)
    candidates = (kept_blocks[..., None] * block_size + offsets).flatten(-2)
    candidate_valid = (
        (kept_block_scores[..., None] > NEG_INF).expand(-1, -1, -1, block_size).flatten(-2)
        & (candidates >= candidate_low[:, None, None])
        & (candidates < candidate_high[:, None, None])
    )
    if head_scaling is None:
        query_channels = query.float().sum(dim=2).gather(-1, label_channels)  # [B, NG, C]
        scores = candidate_label_scores(query_channels, label_codes, label_scale, label_zero, candidates, bits)
        return candidates, scores.masked_fill(~candidate_valid, NEG_INF)
    head_channels = query.float().gather(-1, label_channels[:, :, None, :].expand(-1, -1, query.shape[2], -1))
    head_scores = candidate_label_scores(head_channels, label_codes, label_scale, label_zero, candidates, bits)
    return candidates, head_mass_scores(head_scores.masked_fill(~candidate_valid[:, :, None], NEG_INF), head_scaling)


def head_mass_scores(head_scores: torch.Tensor, scaling: float) -> torch.Tensor:
    """Rank candidates by the attention mass the group's heads would give them, as estimated from the labels.

    head_scores [B, NG, G, N] float32, each head's label scores of the candidates (-inf, in every head, for a
    candidate that may not be picked). Returns [B, NG, N] float32: log sum_h softmax_n(scaling * head_scores[h]),
    -inf where not a candidate. Summing the raw scores instead lets the heads with the largest query norms pick
    for all of them; this way each head's share counts by its own softmax.
    """
    scaled = head_scores * scaling
    # A group with no candidate has a normalizer of -inf; clamped, its scores stay -inf instead of NaN.
    normalizer = scaled.logsumexp(dim=-1, keepdim=True).clamp(min=torch.finfo(torch.float32).min)
    return (scaled - normalizer).logsumexp(dim=2)


def select_top_k(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest entries of each row, in no particular order: scores [..., N] float32, 0 < k <= N.

    Returns values [..., k] float32 and indices [..., k] int64 (ties broken arbitrarily).
    """
    best = scores.topk(k, dim=-1, sorted=False)
    return best.values, best.indices


def select_tokens_into(
    token_scores: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    fixed_slots: torch.Tensor,
    fixed_valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token selection's output: each group's fixed slots, then its k best candidates.

    token_scores [B, NG, N] float32 (-inf for candidates that may not be picked); candidates [B, NG, N] int64
    slots; fixed_slots [B, F] int64 and fixed_valid [B, F] bool (sinks and local window, the same for every group).
    Returns slots [B, NG, F + k] int64 and valid [B, NG, F + k] bool; a selected candidate is valid when its
    score is above -inf. The k selected come in no particular order.
    """
    groups = token_scores.shape[1]
    best_scores, best = select_top_k(token_scores, k)
    slots = torch.cat([fixed_slots[:, None, :].expand(-1, groups, -1), candidates.gather(-1, best)], dim=-1)
    valid = torch.cat([fixed_valid[:, None, :].expand(-1, groups, -1), best_scores > NEG_INF], dim=-1)
    return slots, valid


def sparse_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    valid: torch.Tensor,
    scaling: float,
) -> torch.Tensor:
    """Exact softmax attention of each group's query heads over that group's selected slots.

    query [B, NG, G, Dk]; keys [B, NG, S, Dk]; values [B, NG, S, Dv]; slots [B, NG, N] int64;
    valid [B, NG, N] bool (invalid entries are ignored; every row needs one valid entry).
    Returns [B, NG, G, Dv] in the query's dtype; softmax and sums in float32.
    """
    index = slots[..., None]
    picked_keys = keys.gather(2, index.expand(-1, -1, -1, keys.shape[-1])).float()
    picked_values = values.gather(2, index.expand(-1, -1, -1, values.shape[-1])).float()
    scores = torch.einsum("bgqd,bgnd->bgqn", query.float(), picked_keys) * scaling
    scores = scores.masked_fill(~valid[:, :, None, :], NEG_INF)
    probs = torch.softmax(scores, dim=-1)
    return torch.einsum("bgqn,bgnd->bgqd", probs, picked_values).to(query.dtype)


def dense_decode_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, key_valid: torch.Tensor, scaling: float
) -> torch.Tensor:
    """Full attention of each group's query heads over all of that group's slots (the dense baseline).

    query [B, NG, G, Dk]; keys [B, NG, L, Dk]; values [B, NG, L, Dv]; key_valid [B, L] bool.
    Returns [B, NG, G, Dv] in the query's dtype.
    """
    if keys.shape[1] > 1:
        return F.scaled_dot_product_attention(query, keys, values, attn_mask=key_valid[:, None, None, :], scale=scaling)
    # One group shared by many heads (MLA): SDPA's kernels would run one block per row here; two GEMMs read the
    # cache once for all heads. Scores in the cache's dtype and softmax in float32, as transformers' eager path.
    scores = torch.matmul(query, keys.transpose(-1, -2)) * scaling
    scores = scores.float().masked_fill(~key_valid[:, None, None, :], NEG_INF)
    return torch.matmul(torch.softmax(scores, dim=-1).to(values.dtype), values)


def causal_prefill_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    first_query_slot: int,
    row_start: torch.Tensor,
    scaling: float,
    chunk_size: int,
) -> torch.Tensor:
    """Dense causal attention of T new queries over the cache, in query chunks (never a T x T mask).

    query [B, H, T, Dk] for slots first_query_slot .. first_query_slot + T - 1; keys [B, NG, L, Dk] and
    values [B, NG, L, Dv] with L = first_query_slot + T and H a multiple of NG (query head h uses group
    h // (H / NG)); row_start [B]. A pad query (slot before its row's start) attends to itself only, so it
    stays finite and never touches real tokens. Returns [B, H, T, Dv] in the query's dtype.
    """
    total = query.shape[2]
    outputs = []
    for chunk_begin in range(0, total, chunk_size):
        chunk_end = min(chunk_begin + chunk_size, total)
        key_len = first_query_slot + chunk_end
        key_slots = torch.arange(key_len, device=query.device)
        query_slots = torch.arange(first_query_slot + chunk_begin, first_query_slot + chunk_end, device=query.device)
        causal = key_slots[None, :] <= query_slots[:, None]  # [Tc, L]
        real_key = key_slots[None, :] >= row_start[:, None]  # [B, L]
        mask = (causal[None] & real_key[:, None]) | (key_slots[None, :] == query_slots[:, None])[None]
        outputs.append(
            F.scaled_dot_product_attention(
                query[:, :, chunk_begin:chunk_end],
                keys[:, :, :key_len],
                values[:, :, :key_len],
                attn_mask=mask[:, None],
                scale=scaling,
                enable_gqa=True,
            )
        )
    return torch.cat(outputs, dim=2)


def copy_rows(
    source: torch.Tensor,
    target: torch.Tensor,
    source_rows: torch.Tensor,
    target_rows: torch.Tensor,
    valid: torch.Tensor,
    programs: int | None = None,
    second_target: torch.Tensor | None = None,
    entries: int = 1,
) -> None:
    """In place: target[target_rows[n]] = source[source_rows[n]] for every n where valid[n]. (`programs`, the
    kernel's grid cap, changes nothing here.)

    source [Ns, W] and target [Nt, W] of one dtype, on any devices (pinned host memory included); source_rows,
    target_rows [N] int64 and valid [N] bool, on one device. Rows named twice in target_rows get one of the copies.
    With second_target [Nt, E * W2] (the values beside the keys): each source row holds E = `entries` entries of
    W1 + W2 columns side by side, source [Ns, E * (W1 + W2)], and each entry's first W1 columns go to target
    [Nt, E * W1], the other W2 to second_target.
    """
    picked = source[source_rows[valid].to(source.device)]
    picked_target = target_rows[valid]
    if second_target is None:
        target[picked_target.to(target.device)] = picked.to(target.device)
        return
    picked = picked.view(len(picked), entries, source.shape[1] // entries)
    first = target.shape[1] // entries
    for part, part_target in ((picked[..., :first], target), (picked[..., first:], second_target)):
        part_target[picked_target.to(part_target.device)] = part.flatten(1).to(part_target.device)


def plan_resident_blocks(
    wanted: torch.Tensor,
    slot_block: torch.Tensor,
    slot_last_wanted: torch.Tensor,
    block_slot: torch.Tensor,
    step: torch.Tensor,
    counters: torch.Tensor,
    source_blocks_per_row: int,
    target_slots_per_row: int,
    reserved_slots: int,
    cursor: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Plan which device slots the blocks `wanted` go to, update the resident-set state in place, and give the
    copies as rows for copy_rows.

    wanted [B, NG, K] int64: block ids (-1: none; unique per row and group, below C), K <= S. State, per row and
    group (offload.ResidentSet): slot_block [B, NG, S] int64, the block each slot holds (-1: empty); slot_last_wanted
    [B, NG, S] int64, the last step its block was wanted (-1: never); block_slot [B, NG, C + 1] int64, the slot of
    each block id (-1: not resident; column C a spare that stays -1); step a 0-dim int64, this plan's number.
    counters [4] int64 gets (1, wanted blocks, hits, misses) added.

    A wanted block already resident is a hit. Each miss goes to a slot whose block is not wanted now, in the order
    of the misses in `wanted`: without `cursor`, least recently wanted first (empty slots, -1, first of all; ties
    to the lower slot); with cursor [B, NG] int64 (a slot index per row and group, updated in place), the next
    such slots in circular order from the cursor, which then moves past the last slot taken (first in, first
    out: no ranking of the slots, so it suits thousands of them). Returns hits [B, NG, K] bool; copy_mask
    [B, NG, K] bool (wanted and not resident); dest_slots [B, NG, K] int64, the slot each miss goes to (-1
    elsewhere); and source_rows, target_rows [B * NG * K] int64: a miss's block as a row of the store seen as
    [B * NG * source_blocks_per_row, ...] and its slot as a row of the device buffer seen as
    [B * NG * target_slots_per_row, ...], reserved_slots rows of each (row, group) before the block slots (0 where
    nothing is copied). After the call slot_block and block_slot describe the slots once the copies have landed,
    and slot_last_wanted is `step` on every wanted block's slot.
    """
    num_slots, capacity = slot_block.shape[2], block_slot.shape[2] - 1
    valid = wanted >= 0
    known = valid & (wanted < capacity)
    wanted_slot = torch.where(known, block_slot.gather(2, torch.where(known, wanted, capacity)), -1)
    hits = wanted_slot >= 0
    copy_mask = valid & ~hits

    slot_wanted = torch.zeros((*wanted.shape[:2], num_slots + 1), dtype=torch.bool, device=wanted.device)
    slot_wanted.scatter_(2, torch.where(hits, wanted_slot, num_slots), True)  # column S: a sink, dropped
    slot_wanted = slot_wanted[:, :, :num_slots]
    if cursor is None:
        eviction_key = torch.where(slot_wanted, torch.iinfo(torch.long).max, slot_last_wanted)
        victims = eviction_key.argsort(dim=2, stable=True)
    else:
        circular = (cursor[..., None] + torch.arange(num_slots, device=wanted.device)) % num_slots
        taken_last = slot_wanted.gather(2, circular)  # slots wanted now go after every other, in circular order
        victims = circular.gather(2, taken_last.long().argsort(dim=2, stable=True))
    miss_rank = copy_mask.long().cumsum(dim=2) - 1
    dest_slots = torch.where(copy_mask, victims.gather(2, miss_rank.clamp(min=0)), -1)
    if cursor is not None:
        misses = copy_mask.sum(dim=2)
        last_taken = victims.gather(2, (misses - 1).clamp(min=0)[..., None])[..., 0]
        cursor.copy_(torch.where(misses > 0, (last_taken + 1) % num_slots, cursor))

    evicted = slot_block.gather(2, dest_slots.clamp(min=0))
    evicted_valid = copy_mask & (evicted >= 0)
    block_slot.scatter_(2, torch.where(evicted_valid, evicted, capacity), -1)
    block_slot.scatter_(2, torch.where(copy_mask, wanted, capacity), dest_slots)
    block_slot[:, :, capacity] = -1
    new_slot = torch.where(valid, torch.where(hits, wanted_slot, dest_slots), num_slots)
    spare = slot_block.new_full((*wanted.shape[:2], 1), -1)
    for state, value in ((slot_block, wanted), (slot_last_wanted, step.expand(new_slot.shape))):
        widened = torch.cat([state, spare], dim=2)
        widened.scatter_(2, new_slot, value)
        state.copy_(widened[:, :, :num_slots])

    batch, groups, _ = wanted.shape
    row_group = torch.arange(batch * groups, device=wanted.device).view(batch, groups, 1)
    source_rows = torch.where(copy_mask, row_group * source_blocks_per_row + wanted, 0).flatten()
    target_rows = torch.where(copy_mask, row_group * target_slots_per_row + reserved_slots + dest_slots, 0).flatten()
    counters += torch.stack([torch.ones_like(counters[0]), valid.sum(), hits.sum(), copy_mask.sum()])
    return hits, copy_mask, dest_slots, source_rows, target_rows


def translate_positions(
    positions: torch.Tensor,
    valid: torch.Tensor,
    block_slot: torch.Tensor,
    block_size: int,
    reserved_slots: int,
    fixed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token positions of an offloaded layer -> positions in its device buffer.

    positions [B, NG, T] int64 and valid [B, NG, T] bool; block_slot [B, NG, C + 1] int64, the slot of each block
    id (-1: not resident). The first `fixed` entries of each (row, group) are already buffer positions and pass
    through unchanged. Each other valid entry, token p of block b = p // block_size, sits at
    (reserved_slots + block_slot[b]) * block_size + p % block_size when its block is resident. Returns
    (buffer positions [B, NG, T] int64, valid [B, NG, T] bool): an entry that was not valid or whose block is not
    resident (or past C) comes out not valid, at position 0.
    """
    capacity = block_slot.shape[2] - 1
    blocks = torch.where(valid & (positions >= 0), positions // block_size, capacity).clamp(max=capacity)
    slots = block_slot.gather(2, blocks)
    resident = valid & (slots >= 0)
    translated = torch.where(resident, (reserved_slots + slots) * block_size + positions % block_size, 0)
    is_fixed = torch.arange(positions.shape[2], device=positions.device) < fixed
    return torch.where(is_fixed, positions, translated), torch.where(is_fixed, valid, resident)


def forget_resident_blocks(
    slot_block: torch.Tensor, slot_last_wanted: torch.Tensor, block_slot: torch.Tensor, first_block: torch.Tensor
) -> None:
    """Forget, in place, the device copies of every block id >= first_block (a 0-dim int64 tensor) of a resident
    set (state as in plan_resident_blocks; block_slot and slot_block inverse maps of each other): their slots
    become empty and never wanted."""
    stale = slot_block >= first_block
    block_slot.scatter_(2, torch.where(stale, slot_block, block_slot.shape[2] - 1), -1)
    block_slot[:, :, -1] = -1
    slot_block.masked_fill_(stale, -1)
    slot_last_wanted.masked_fill_(stale, -1)


def sorted_with_successors(ids: torch.Tensor, limit: torch.Tensor | None, successors: int) -> torch.Tensor:
    """The token ids an offloaded layer plans with prefetch lag 1, in position order.

    ids [B, NG, T] int64 (-1: none); limit [B] int64, or None when successors is 0. Returns [B, NG, T * (1 + n)]
    int64: the ids and, for each id, the n = `successors` ids after it that lie below its row's limit, sorted
    ascending, each id once (a repeat becomes -1, in place)."""
    following = [torch.where((ids >= 0) & (ids + distance < limit.view(-1, 1, 1)), ids + distance, -1)
                 for distance in range(1, successors + 1)]
    ordered = torch.cat([ids, *following], dim=-1).sort(dim=-1).values
    repeated = torch.zeros_like(ordered, dtype=torch.bool)
    repeated[..., 1:] = ordered[..., 1:] == ordered[..., :-1]
    return torch.where(repeated, -1, ordered)
