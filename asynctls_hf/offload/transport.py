"""Transports: how planned block copies travel from a HostBlockStore into a layer's device buffers.

A device buffer is [B, NG, (R + S) * block_size, D]: R reserved slots, then S block slots; buffer slot r of
(row, group) is positions r * block_size to (r + 1) * block_size (CopyPlan.flat_copies numbers them). A transport
is shared by every layer of a cache on its device: what is pending for one layer is the `PendingCopy` returned to
that layer's engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from asynctls_hf.offload.resident import CopyPlan
from asynctls_hf.offload.store import HostBlockStore


@dataclass
class PendingCopy:
    """Copies issued for one layer and step: `blocks` (row, group, block) copies moving `bytes` bytes host to
    device; `ready` the CUDA event recorded after they land (None when they are already done)."""

    blocks: int
    bytes: int
    ready: torch.cuda.Event | None = None


@dataclass
class WaitTimer:
    """Two timing events around a stream's wait on copies; `seconds()` (once both have run) is the stall."""

    start: torch.cuda.Event
    end: torch.cuda.Event

    def done(self) -> bool:
        return self.end.query()

    def seconds(self) -> float:
        return self.start.elapsed_time(self.end) / 1000.0


class Transport(Protocol):
    def copy_blocks(
        self, plan: CopyPlan, store: HostBlockStore, key_buffer: torch.Tensor, value_buffer: torch.Tensor | None
    ) -> PendingCopy:
        """Start copying plan's blocks from `store` into key_buffer [B, NG, (R + S) * block_size, Dk] and
        value_buffer [B, NG, (R + S) * block_size, Dv] (None when the values are inside the keys). Must be called
        after every read of the slots it overwrites has been issued on the current stream."""

    def wait(self, pending: PendingCopy) -> WaitTimer | None:
        """Make the current stream wait until `pending` has landed; returns a timer of the stall, if measured."""


def _slot_blocks(buffer: torch.Tensor, block_size: int) -> torch.Tensor:
    """A device buffer [B, NG, (R + S) * block_size, D] seen as [B * NG * (R + S), block_size, D] (a view)."""
    return buffer.view(-1, block_size, buffer.shape[-1])


def _block_views(flat: torch.Tensor, count: int, store: HostBlockStore) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A flat buffer of count blocks seen as keys [count, block_size, Dk] followed by values [count, block_size, Dv]
    (None when the values are inside the keys)."""
    key_elements = count * store.block_size * store.key_width
    keys = flat[:key_elements].view(count, store.block_size, store.key_width)
    if store.values_in_keys:
        return keys, None
    return keys, flat[key_elements:].view(count, store.block_size, store.value_width)


class _StagingBuffer:
    """One flat host buffer, grown to the largest copy seen, so that a step's blocks travel in a single copy."""

    def __init__(self, pin_memory: bool):
        self.pin_memory = pin_memory
        self.flat: torch.Tensor | None = None

    def take(self, count: int, store: HostBlockStore) -> torch.Tensor:
        """The first count * block_bytes bytes of the buffer, a flat tensor of the store's dtype."""
        elements = count * store.block_bytes // store.dtype.itemsize
        if self.flat is None or self.flat.dtype != store.dtype or self.flat.numel() < elements:
            grown = max(elements, 2 * self.flat.numel()) if self.flat is not None else elements
            self.flat = torch.empty(grown, dtype=store.dtype, pin_memory=self.pin_memory)
        return self.flat[:elements]


class SyncTransport:
    """Copies at once, on the calling thread and current stream: gather into a host staging buffer, move it to
    the device buffers' device, scatter into the slots. Works for CPU buffers (the tests) and CUDA ones."""

    def __init__(self):
        self._staging = _StagingBuffer(pin_memory=False)

    def copy_blocks(
        self, plan: CopyPlan, store: HostBlockStore, key_buffer: torch.Tensor, value_buffer: torch.Tensor | None
    ) -> PendingCopy:
        rows, groups, blocks, flat_slots = plan.flat_copies()
        count = len(blocks)
        if count == 0:
            return PendingCopy(0, 0)
        staging = self._staging.take(count, store)
        store.gather(rows.cpu(), groups.cpu(), blocks.cpu(), *_block_views(staging, count, store))
        keys, values = _block_views(staging.to(key_buffer.device), count, store)
        _slot_blocks(key_buffer, store.block_size).index_copy_(0, flat_slots, keys)
        if values is not None:
            _slot_blocks(value_buffer, store.block_size).index_copy_(0, flat_slots, values)
        return PendingCopy(count, count * store.block_bytes)

    def wait(self, pending: PendingCopy) -> None:
        return None


class CudaStreamTransport:
    """Copies on a side CUDA stream, ordered by events.

    copy_blocks, per layer and step: (1) read the plan on the host (the one host synchronization: which blocks
    to copy is data the GPU just computed, and the gather runs on the CPU); (2) gather the blocks from the pinned
    store into a pinned staging buffer (two buffers, alternating, each reused only after its previous upload has
    finished); (3) record `issued` on the current (compute) stream, which is after the plan and after every read
    of the slots issued so far, and make the copy stream wait on it, so no slot is overwritten while a step still
    reads it; (4) on the copy stream, one non_blocking H2D copy of the staging buffer, a scatter into the slots,
    and the `ready` event. wait(pending) makes the current stream wait on `ready` before the slots are read,
    between two timing events that measure the stall.
    """

    def __init__(self, device: torch.device | str | None = None, stream: torch.cuda.Stream | None = None):
        self.device = torch.device("cuda") if device is None else torch.device(device)
        self.stream = stream if stream is not None else torch.cuda.Stream(self.device)
        self._staging = [_StagingBuffer(pin_memory=True), _StagingBuffer(pin_memory=True)]
        self._uploaded: list[torch.cuda.Event | None] = [None, None]
        self._turn = 0

    def copy_blocks(
        self, plan: CopyPlan, store: HostBlockStore, key_buffer: torch.Tensor, value_buffer: torch.Tensor | None
    ) -> PendingCopy:
        rows, groups, blocks, flat_slots = plan.flat_copies()
        count = len(blocks)
        if count == 0:
            return PendingCopy(0, 0)
        turn, self._turn = self._turn, 1 - self._turn
        if self._uploaded[turn] is not None:
            self._uploaded[turn].synchronize()
        staging = self._staging[turn].take(count, store)
        store.gather(rows.cpu(), groups.cpu(), blocks.cpu(), *_block_views(staging, count, store))
        issued = torch.cuda.Event()
        issued.record()
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(issued)
            uploaded_staging = staging.to(self.device, non_blocking=True)
            uploaded = torch.cuda.Event()
            uploaded.record(self.stream)
            keys, values = _block_views(uploaded_staging, count, store)
            _slot_blocks(key_buffer, store.block_size).index_copy_(0, flat_slots, keys)
            if values is not None:
                _slot_blocks(value_buffer, store.block_size).index_copy_(0, flat_slots, values)
            ready = torch.cuda.Event()
            ready.record(self.stream)
        flat_slots.record_stream(self.stream)
        self._uploaded[turn] = uploaded
        return PendingCopy(count, count * store.block_bytes, ready)

    def wait(self, pending: PendingCopy) -> WaitTimer | None:
        if pending.ready is None:
            return None
        stream = torch.cuda.current_stream(self.device)
        timer = WaitTimer(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        timer.start.record(stream)
        stream.wait_event(pending.ready)
        timer.end.record(stream)
        return timer
