"""Transports: how planned block copies travel from a HostBlockStore into a layer's device buffers.

A device buffer is [B, NG, (R + S) * block_size, D]: R reserved slots, then S block slots; buffer slot r of
(row, group) is positions r * block_size to (r + 1) * block_size (CopyPlan's target rows number them). A transport
is shared by every layer of a cache on its device: what is pending for one layer is the `PendingCopy` returned to
that layer's engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from asynctls_hf import ops
from asynctls_hf.offload.resident import CopyPlan
from asynctls_hf.offload.store import HostBlockStore


@dataclass
class PendingCopy:
    """Copies issued for one layer and step: `ready` the CUDA event recorded after they land (None when they are
    already done). The plan counted them (ResidentSet.counters)."""

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
    stream: torch.cuda.Stream | None  # the side stream the copies run on (None: the current stream)
    write_stream: torch.cuda.Stream | None  # the stream the store's writes run on (None: the current stream)

    def copy_blocks(
        self,
        make_plan: Callable[[], CopyPlan],
        reads: tuple[torch.Tensor, ...],
        store: HostBlockStore,
        key_buffer: torch.Tensor,
        value_buffer: torch.Tensor | None,
        inline: bool = False,
    ) -> PendingCopy:
        """Start copying the blocks of the plan `make_plan()` returns from `store` into key_buffer
        [B, NG, (R + S) * block_size, Dk] and value_buffer [B, NG, (R + S) * block_size, Dv] (None when the values
        are inside the keys). make_plan runs where the copies run, ordered after everything issued so far on the
        current stream: a plan made there costs the current stream nothing (a plan already made is returned by
        it). `reads`: the current stream's tensors make_plan reads. Must be called after every read of the slots
        it overwrites has been issued on the current stream. `inline`: the current stream is to wait for the
        copies at once (exact mode), so plan and copies run on it, without the hop to a side stream and back."""

    def wait(self, pending: PendingCopy) -> WaitTimer | None:
        """Make the current stream wait until `pending` has landed; returns a timer of the stall, if measured."""


@dataclass
class BlockCopies:
    """A plan's copies as rows (CopyPlan): source_rows, target_rows [N] int64, copy_mask [N] bool; each row
    row_tokens tokens."""

    source_rows: torch.Tensor
    target_rows: torch.Tensor
    copy_mask: torch.Tensor
    row_tokens: int

    @classmethod
    def of(cls, plan: CopyPlan) -> BlockCopies:
        return cls(plan.source_rows, plan.target_rows, plan.copy_mask.flatten(), plan.row_tokens)

    def run(self, store: HostBlockStore, key_buffer: torch.Tensor, value_buffer: torch.Tensor | None,
            backend: str, programs: int | None = None) -> None:
        """Copy the blocks on the current stream with one ops.copy_rows launch (its grid capped at `programs`): each
        (block or token) row of the store's entries, keys and values side by side, split into the key and value
        buffers (into the key buffer alone when the values are inside the keys)."""
        def rows(tensor: torch.Tensor, width: int) -> torch.Tensor:
            return tensor.view(-1, self.row_tokens * width)

        ops.copy_rows(
            rows(store.entries, store.entry_width), rows(key_buffer, store.key_width), self.source_rows,
            self.target_rows, self.copy_mask, programs=programs,
            second_target=None if value_buffer is None else rows(value_buffer, store.value_width),
            entries=1 if value_buffer is None else self.row_tokens, backend=backend,
        )


class SyncTransport:
    """Copies at once, on the current stream, with the PyTorch reference of copy_rows: CPU device buffers (the
    tests), or any device where the pinned store is not readable from a kernel."""

    stream = None
    write_stream = None

    def copy_blocks(
        self,
        make_plan: Callable[[], CopyPlan],
        reads: tuple[torch.Tensor, ...],
        store: HostBlockStore,
        key_buffer: torch.Tensor,
        value_buffer: torch.Tensor | None,
        inline: bool = False,
    ) -> PendingCopy:
        BlockCopies.of(make_plan()).run(store, key_buffer, value_buffer, backend="torch")
        return PendingCopy()

    def wait(self, pending: PendingCopy) -> None:
        return None


class CudaStreamTransport:
    """Copies on a side CUDA stream by a kernel that reads the pinned store through its mapped address
    (ops.copy_rows), ordered by events; the host never waits for the device.

    copy_blocks, per layer and step: (1) record `issued` on the current (compute) stream, which is after what the
    plan reads (or the plan itself), after the store's writes of the step (themselves kernels on that stream) and
    after every read of the slots issued so far, and make the copy stream wait on it, so no slot is overwritten
    while a step still reads it; (2) on the copy stream, the plan (unless made already), one copy_rows launch for
    the keys and values (two where their widths differ, one when the values are inside the keys) that moves each
    planned block from the store into its slot, and the `ready` event. wait(pending) makes the current stream wait
    on `ready` before the slots are read, between two timing events that measure the stall. `inline` copies (exact
    mode) skip both events: the plan and the copies run on the current stream, and there is nothing to wait for.
    The store must be pinned (HostBlockStore(pin_memory=True)).

    The copy stream is created with `priority` (CUDA's convention: lower is higher, 0 the default, -1 high) unless
    `stream` is given. `side_stream=False` makes none (`stream` is None): every copy runs inline on the current
    stream and the store's writes go there too (HostBlockStore's write_stream None). Exact mode needs no side
    stream, and using one costs every later step: once a second stream of the process has run work, every kernel
    of a replayed CUDA graph starts about 0.3 µs later than before (3000 kernels: about 1 ms a step at batch 1,
    measured on an H200; BENCHMARKS.md, "The side stream"), the resident step's included. `copy_programs` caps
    each copy launch's grid (None: one program per tile of rows, see ops.copy_rows), which decides how much of the
    GPU the copies take from the compute running beside them.

    `graph_only` (with a side stream; without one it changes nothing): the copy stream runs work only inside
    CUDA-graph captures, where the copies become a branch of the captured step that its replays run beside the
    compute; copies issued outside a capture (the eager steps before it) run inline and the store's writes run on
    the current stream (`write_stream` None), so the process never runs eager work on a second stream.
    """

    def __init__(
        self,
        device: torch.device | str | None = None,
        stream: torch.cuda.Stream | None = None,
        *,
        priority: int = 0,
        copy_programs: int | None = None,
        side_stream: bool = True,
        graph_only: bool = False,
    ):
        if stream is not None and not side_stream:
            raise ValueError("CudaStreamTransport got a stream and side_stream=False; pass one or the other")
        self.device = torch.device("cuda") if device is None else torch.device(device)
        self.stream = None
        if side_stream:
            self.stream = stream if stream is not None else torch.cuda.Stream(self.device, priority=priority)
        self.graph_only = graph_only and self.stream is not None
        self.write_stream = None if self.graph_only else self.stream
        self.copy_programs = copy_programs
        self.forked_in_capture = False  # copies issued while a CUDA graph is being captured, not yet joined

    def join_capture(self) -> None:
        """Under CUDA-graph capture, at the end of the captured work: make the capturing stream wait for the copies
        issued in the capture (a graph must end joined; the next replay starts after them)."""
        if self.forked_in_capture:
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
            self.forked_in_capture = False

    def copy_blocks(
        self,
        make_plan: Callable[[], CopyPlan],
        reads: tuple[torch.Tensor, ...],
        store: HostBlockStore,
        key_buffer: torch.Tensor,
        value_buffer: torch.Tensor | None,
        inline: bool = False,
    ) -> PendingCopy:
        if not store.pin_memory:
            raise ValueError("CudaStreamTransport reads the store from a kernel: the store must be pinned")
        capturing = torch.cuda.is_current_stream_capturing()
        if inline or self.stream is None or (self.graph_only and not capturing):
            BlockCopies.of(make_plan()).run(store, key_buffer, value_buffer, backend="triton",
                                            programs=self.copy_programs)
            return PendingCopy()
        pending = PendingCopy()
        issued = torch.cuda.Event()
        issued.record()
        self.forked_in_capture |= capturing
        for tensor in reads:
            tensor.record_stream(self.stream)
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(issued)
            copies = BlockCopies.of(make_plan())
            copies.run(store, key_buffer, value_buffer, backend="triton", programs=self.copy_programs)
            pending.ready = torch.cuda.Event()
            pending.ready.record(self.stream)
        for tensor in (copies.source_rows, copies.target_rows, copies.copy_mask):
            tensor.record_stream(self.stream)
        return pending

    def wait(self, pending: PendingCopy) -> WaitTimer | None:
        if pending.ready is None:
            return None
        stream = torch.cuda.current_stream(self.device)
        if torch.cuda.is_current_stream_capturing():  # timing events cannot be captured: the wait goes untimed
            stream.wait_event(pending.ready)
            return None
        timer = WaitTimer(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
        timer.start.record(stream)
        stream.wait_event(pending.ready)
        timer.end.record(stream)
        return timer
