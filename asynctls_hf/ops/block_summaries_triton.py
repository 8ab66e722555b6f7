"""Triton kernel of `update_block_summaries`: channel-wise max/min of the blocks an append touched.

A decode append touches one block per row and group, so one launch re-reduces just that block (block_size
rows). Same function as `naive.update_block_summaries`: pad slots and slots at or after slot_end are left
out, and a block with no real slot gets zeros.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import check_float, check_same_device, require


@triton.jit
def _update_block_summaries_kernel(
    keys_ptr,
    block_max_ptr,
    block_min_ptr,
    row_start_ptr,
    first_block,
    slot_end,
    groups,
    stride_keys_b,
    stride_keys_g,
    stride_keys_s,
    stride_max_b,
    stride_max_g,
    stride_max_n,
    stride_min_b,
    stride_min_g,
    stride_min_n,
    KEY_WIDTH: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    SLOTS_PER_STEP: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Grid (touched blocks, B * NG, channel tiles): one program reduces one block over BLOCK_D channels."""
    block = first_block + tl.program_id(0)
    batch = tl.program_id(1) // groups
    group = tl.program_id(1) % groups
    channels = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
    channel_ok = channels < KEY_WIDTH
    row_start = tl.load(row_start_ptr + batch)
    keys_ptr += batch.to(tl.int64) * stride_keys_b + group.to(tl.int64) * stride_keys_g
    running_max = tl.full([BLOCK_D], float("-inf"), tl.float32)
    running_min = tl.full([BLOCK_D], float("inf"), tl.float32)
    real_slots = 0
    for step in tl.static_range(0, BLOCK_SIZE, SLOTS_PER_STEP):
        slots = block * BLOCK_SIZE + step + tl.arange(0, SLOTS_PER_STEP)
        real = (slots >= row_start) & (slots < slot_end)
        tile = tl.load(
            keys_ptr + slots.to(tl.int64)[:, None] * stride_keys_s + channels[None, :],
            mask=real[:, None] & channel_ok[None, :],
            other=0.0,
        ).to(tl.float32)
        running_max = tl.maximum(running_max, tl.max(tl.where(real[:, None], tile, float("-inf")), axis=0))
        running_min = tl.minimum(running_min, tl.min(tl.where(real[:, None], tile, float("inf")), axis=0))
        real_slots += tl.sum(real.to(tl.int32), axis=0)
    block_max = tl.where(real_slots > 0, running_max, 0.0)
    block_min = tl.where(real_slots > 0, running_min, 0.0)
    max_out = block_max_ptr + batch.to(tl.int64) * stride_max_b + group * stride_max_g + block * stride_max_n
    min_out = block_min_ptr + batch.to(tl.int64) * stride_min_b + group * stride_min_g + block * stride_min_n
    tl.store(max_out + channels, block_max.to(block_max_ptr.dtype.element_ty), mask=channel_ok)
    tl.store(min_out + channels, block_min.to(block_min_ptr.dtype.element_ty), mask=channel_ok)


def update_block_summaries(
    keys: torch.Tensor,
    block_max: torch.Tensor,
    block_min: torch.Tensor,
    row_start: torch.Tensor,
    slot_begin: int,
    slot_end: int,
    block_size: int,
) -> None:
    """In place: block_max, block_min [B, NG, S // block_size, Dk] of every block overlapping [slot_begin, slot_end).

    keys [B, NG, S, Dk]; row_start [B] int32/int64, first real slot of each row.
    """
    check_float("keys", keys, 4)
    check_float("block_max", block_max, 4)
    check_float("block_min", block_min, 4)
    check_same_device(keys=keys, block_max=block_max, block_min=block_min, row_start=row_start)
    batch, groups, capacity, key_width = keys.shape
    require(block_size > 0 and block_size & (block_size - 1) == 0, f"block_size must be a power of 2, got {block_size}")
    require(block_max.shape == block_min.shape, "block_max and block_min must have the same shape")
    require(
        block_max.shape[:2] == (batch, groups) and block_max.shape[3] == key_width,
        f"block summaries {tuple(block_max.shape)} do not match keys {tuple(keys.shape)}",
    )
    require(block_max.dtype == block_min.dtype, "block_max and block_min must share a dtype")
    require(row_start.shape == (batch,) and row_start.dtype in (torch.int32, torch.int64), "row_start must be [B] int")
    require(0 <= slot_begin <= slot_end <= capacity, f"slots [{slot_begin}, {slot_end}) outside the {capacity} stored")
    if slot_begin == slot_end:
        return
    first_block = slot_begin // block_size
    last_block = (slot_end - 1) // block_size + 1
    require(last_block <= block_max.shape[2], f"block {last_block - 1} is beyond the {block_max.shape[2]} summaries")
    block_d = min(triton.next_power_of_2(key_width), 128)
    grid = (last_block - first_block, batch * groups, triton.cdiv(key_width, block_d))
    _update_block_summaries_kernel[grid](
        keys,
        block_max,
        block_min,
        row_start,
        first_block,
        slot_end,
        groups,
        *keys.stride()[:3],
        *block_max.stride()[:3],
        *block_min.stride()[:3],
        KEY_WIDTH=key_width,
        BLOCK_SIZE=block_size,
        SLOTS_PER_STEP=min(block_size, 32),
        BLOCK_D=block_d,
    )


@triton.jit
def _append_token_kernel(
    key_ptr,
    value_ptr,
    keys_ptr,
    values_ptr,
    ring_keys_ptr,
    ring_values_ptr,
    block_max_ptr,
    block_min_ptr,
    slot_ptr,
    row_start_ptr,
    groups,
    ring_offset,
    ring_size,
    stride_key_b,
    stride_key_g,
    stride_value_b,
    stride_value_g,
    stride_keys_b,
    stride_keys_g,
    stride_keys_s,
    stride_values_b,
    stride_values_g,
    stride_values_s,
    stride_ring_keys_b,
    stride_ring_keys_g,
    stride_ring_keys_s,
    stride_ring_values_b,
    stride_ring_values_g,
    stride_ring_values_s,
    stride_max_b,
    stride_max_g,
    stride_max_n,
    stride_min_b,
    stride_min_g,
    stride_min_n,
    KEY_WIDTH: tl.constexpr,
    VALUE_WIDTH: tl.constexpr,
    WRITE_KEYS: tl.constexpr,
    WRITE_VALUES: tl.constexpr,
    WRITE_RING_KEYS: tl.constexpr,
    WRITE_RING_VALUES: tl.constexpr,
    BLOCK_SIZE: tl.constexpr,
    KEY_PAD: tl.constexpr,
    VALUE_PAD: tl.constexpr,
):
    """Grid (B * NG,): one program writes one row and group's token (to the storage at `slot`, and to the ring at
    ring_offset + slot % ring_size) and updates its block's max/min."""
    batch = tl.program_id(0) // groups
    group = tl.program_id(0) % groups
    slot = tl.load(slot_ptr).to(tl.int64)
    row_start = tl.load(row_start_ptr + batch).to(tl.int64)
    ring_position = ring_offset + slot % ring_size
    channels = tl.arange(0, KEY_PAD)
    channel_ok = channels < KEY_WIDTH
    key = tl.load(key_ptr + batch * stride_key_b + group * stride_key_g + channels, mask=channel_ok, other=0.0)
    if WRITE_KEYS:
        keys_out = keys_ptr + batch.to(tl.int64) * stride_keys_b + group * stride_keys_g + slot * stride_keys_s
        tl.store(keys_out + channels, key.to(keys_ptr.dtype.element_ty), mask=channel_ok)
    if WRITE_RING_KEYS:
        ring_out = ring_keys_ptr + batch.to(tl.int64) * stride_ring_keys_b + group * stride_ring_keys_g
        ring_out += ring_position * stride_ring_keys_s
        tl.store(ring_out + channels, key.to(ring_keys_ptr.dtype.element_ty), mask=channel_ok)
    if WRITE_VALUES or WRITE_RING_VALUES:
        value_channels = tl.arange(0, VALUE_PAD)
        value_ok = value_channels < VALUE_WIDTH
        value = tl.load(value_ptr + batch * stride_value_b + group * stride_value_g + value_channels, mask=value_ok)
        if WRITE_VALUES:
            values_out = values_ptr + batch.to(tl.int64) * stride_values_b + group * stride_values_g
            values_out += slot * stride_values_s
            tl.store(values_out + value_channels, value.to(values_ptr.dtype.element_ty), mask=value_ok)
        if WRITE_RING_VALUES:
            ring_out = ring_values_ptr + batch.to(tl.int64) * stride_ring_values_b + group * stride_ring_values_g
            ring_out += ring_position * stride_ring_values_s
            tl.store(ring_out + value_channels, value.to(ring_values_ptr.dtype.element_ty), mask=value_ok)
    block = slot // BLOCK_SIZE
    max_ptr = block_max_ptr + batch.to(tl.int64) * stride_max_b + group * stride_max_g + block * stride_max_n
    min_ptr = block_min_ptr + batch.to(tl.int64) * stride_min_b + group * stride_min_g + block * stride_min_n
    key = key.to(block_max_ptr.dtype.element_ty).to(tl.float32)
    old_max = tl.load(max_ptr + channels, mask=channel_ok, other=0.0).to(tl.float32)
    old_min = tl.load(min_ptr + channels, mask=channel_ok, other=0.0).to(tl.float32)
    real = row_start <= slot
    first_real = tl.maximum(row_start, block * BLOCK_SIZE) == slot
    new_max = tl.where(real, tl.where(first_real, key, tl.maximum(old_max, key)), 0.0)
    new_min = tl.where(real, tl.where(first_real, key, tl.minimum(old_min, key)), 0.0)
    tl.store(max_ptr + channels, new_max.to(block_max_ptr.dtype.element_ty), mask=channel_ok)
    tl.store(min_ptr + channels, new_min.to(block_min_ptr.dtype.element_ty), mask=channel_ok)


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
    """One launch of naive.append_token (shapes there): the token's K/V written at `slot` (and into the ring),
    its block's summaries updated; `slot` is read on the device, so a CUDA graph can capture the launch. keys and
    values may be pinned host memory, written through its mapped address."""
    check_float("key", key, 4)
    check_float("block_max", block_max, 4)
    check_float("block_min", block_min, 4)
    batch, groups, tokens, key_width = key.shape
    require(tokens == 1, f"append_token writes one token, got {tokens}")
    require(block_size > 0 and block_size & (block_size - 1) == 0, f"block_size must be a power of 2, got {block_size}")
    require(block_max.shape == block_min.shape and block_max.dtype == block_min.dtype,
            "block_max and block_min must share a shape and dtype")
    require(block_max.shape[:2] == (batch, groups) and block_max.shape[3] == key_width,
            f"block summaries {tuple(block_max.shape)} do not match the key {tuple(key.shape)}")
    require(slot.numel() == 1 and slot.dtype in (torch.int32, torch.int64), "slot must be one int")
    require(row_start.shape == (batch,) and row_start.dtype in (torch.int32, torch.int64), "row_start must be [B] int")
    require(ring_size > 0, f"ring_size must be positive, got {ring_size}")
    for name, target in (("keys", keys), ("ring_keys", ring_keys)):
        if target is not None:
            check_float(name, target, 4)
            require(target.shape[:2] == (batch, groups) and target.shape[3] == key_width,
                    f"{name} do not match the key")
            require(target.device == key.device or (target.device.type == "cpu" and target.is_pinned()),
                    f"{name} must be on the key's device or in pinned host memory")
    write_values = values is not None or ring_values is not None
    for name, target in (("values", values), ("ring_values", ring_values)):
        if target is not None:
            check_float("value", value, 4)
            check_float(name, target, 4)
            require(value.shape[:3] == (batch, groups, 1) and target.shape[:2] == (batch, groups)
                    and target.shape[3] == value.shape[3], f"{name} do not match the value")
            require(target.device == key.device or (target.device.type == "cpu" and target.is_pinned()),
                    f"{name} must be on the key's device or in pinned host memory")
    check_same_device(key=key, block_max=block_max, slot=slot, row_start=row_start)
    value_width = value.shape[3] if write_values else 1

    def strides(target: torch.Tensor | None) -> tuple[int, int, int]:
        return target.stride()[:3] if target is not None else (0, 0, 0)

    _append_token_kernel[(batch * groups,)](
        key,
        value if write_values else key,
        keys if keys is not None else key,
        values if values is not None else key,
        ring_keys if ring_keys is not None else key,
        ring_values if ring_values is not None else key,
        block_max,
        block_min,
        slot,
        row_start,
        groups,
        ring_offset,
        ring_size,
        *key.stride()[:2],
        *(value.stride()[:2] if write_values else (0, 0)),
        *strides(keys),
        *strides(values),
        *strides(ring_keys),
        *strides(ring_values),
        *block_max.stride()[:3],
        *block_min.stride()[:3],
        KEY_WIDTH=key_width,
        VALUE_WIDTH=value_width,
        WRITE_KEYS=keys is not None,
        WRITE_VALUES=values is not None,
        WRITE_RING_KEYS=ring_keys is not None,
        WRITE_RING_VALUES=ring_values is not None,
        BLOCK_SIZE=block_size,
        KEY_PAD=triton.next_power_of_2(key_width),
        VALUE_PAD=triton.next_power_of_2(value_width),
    )
