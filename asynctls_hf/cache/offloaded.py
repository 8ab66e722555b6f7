"""OffloadedKV: one layer's K/V (or MLA latent) when the cache is offloaded to host memory."""

from __future__ import annotations

import torch

from asynctls_hf import ops
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.offload import HostBlockStore, OffloadEngine, Transport


def _round_up(value: int, quantum: int) -> int:
    return -(-value // quantum) * quantum


def window_layout(config: AsyncTLSConfig) -> tuple[int, int]:
    """(ring_tokens, window_tokens) of an offloaded layer's device window: the sinks, then a ring of the most
    recent tokens that holds the local window and the current block (so at least one block), in whole blocks."""
    ring_tokens = _round_up(max(config.local_tokens, 1), config.block_size)
    return ring_tokens, _round_up(config.sink_tokens + ring_tokens, config.block_size)


def window_positions(config: AsyncTLSConfig, fixed_slots: torch.Tensor) -> torch.Tensor:
    """Where a decode step's sinks and local window sit in an offloaded layer's device window: fixed_slots
    [B, sink + local] (DecodePlan's: the sinks' slots, then the local window's) -> [B, sink + local] int64."""
    ring_tokens, _ = window_layout(config)
    sinks = torch.arange(config.sink_tokens, device=fixed_slots.device).expand(fixed_slots.shape[0], -1)
    local = config.sink_tokens + fixed_slots[:, config.sink_tokens :] % ring_tokens
    return torch.cat([sinks, local], dim=1)


def offload_slots(config: AsyncTLSConfig) -> int:
    """Device slots per (row, group) of an offloaded layer: top_blocks blocks, or as many single tokens
    (offload_granularity "token"); either way top_blocks * block_size tokens of K/V."""
    return config.top_blocks * (1 if config.offload_granularity == "block" else config.block_size)


def resident_set_bytes(config: AsyncTLSConfig, batch: int, num_groups: int, capacity_tokens: int) -> int:
    """Device bytes of an offloaded layer's ResidentSet (int64): the slot of every block or token id of the
    store's capacity, and per slot its id and its last wanted step."""
    ids = capacity_tokens // (config.block_size if config.offload_granularity == "block" else 1) + 1
    return batch * num_groups * (ids + 2 * offload_slots(config)) * torch.iinfo(torch.int64).bits // 8


class OffloadedKV:
    """The full K/V of one layer in a pinned HostBlockStore, and on the device its OffloadEngine's buffer
    [B, NG, W + top_blocks * block_size, D]: a window of W positions, then the slots (top_blocks blocks, or as
    many single tokens with offload_granularity "token").

    Window layout per (row, group): positions 0 .. sink_tokens - 1 hold the row's sinks (sink j is the token at
    slot row_start + j); the next ring_tokens positions hold the most recent tokens, the token at slot p at
    sink_tokens + p % ring_tokens. ring_tokens is a multiple of the block size and at least the local window, so
    the ring also holds every token of the block being appended to.
    """

    def __init__(
        self,
        config: AsyncTLSConfig,
        batch: int,
        num_groups: int,
        key_width: int,
        value_width: int,
        values_in_keys: bool,
        dtype: torch.dtype,
        device: torch.device,
        capacity_tokens: int,
        transport: Transport,
    ):
        self.sink_tokens = config.sink_tokens
        self.ring_tokens, window_tokens = window_layout(config)
        store = HostBlockStore(
            batch, num_groups, key_width, value_width, config.block_size, dtype, values_in_keys=values_in_keys,
            capacity_tokens=capacity_tokens, pin_memory=device.type == "cuda", write_stream=transport.write_stream,
        )
        self.engine = OffloadEngine(
            store, offload_slots(config), transport, device, prefetch_lag=config.prefetch_lag,
            window_tokens=window_tokens, backend=config.backend, granularity=config.offload_granularity,
            prefetch_successors=config.prefetch_successors,
        )
        self.device = device
        self._last_chunk: tuple[int, torch.Tensor, torch.Tensor | None] | None = None
        self._sinks_row_start: torch.Tensor | None = None
        self._sinks_end = 0
        # During a chunked prefill, where the device has room: every appended token's keys [B, NG, T, Dk] and
        # values [B, NG, T, Dv] (None when inside the keys) on the device too (hold_prefill_context).
        self._held: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self.context_read_bytes = 0  # read back from the host store for prefill attention and dense steps

    @property
    def store(self) -> HostBlockStore:
        return self.engine.store

    @property
    def length(self) -> int:
        return self.store.length

    @property
    def keys(self) -> torch.Tensor:
        """The device buffer [B, NG, W + S * block_size, Dk] attention reads."""
        return self.engine.key_buffer

    @property
    def values(self) -> torch.Tensor:
        return self.engine.value_buffer

    def hold_prefill_context(self, tokens: int) -> None:
        """Keep the next `tokens` appended tokens (from the first: only on an empty layer) on the device as well as
        in the host store, until release_prefill_context: prefill attention then reads its context there."""
        if self.length:
            return
        store = self.store
        shape = (store.batch, store.num_groups, tokens)
        keys = torch.empty((*shape, store.key_width), dtype=store.dtype, device=self.device)
        values = None
        if not store.values_in_keys:
            values = torch.empty((*shape, store.value_width), dtype=store.dtype, device=self.device)
        self._held = (keys, values)

    def release_prefill_context(self) -> None:
        self._held = None

    def append(self, keys: torch.Tensor, values: torch.Tensor | None, row_start: torch.Tensor) -> None:
        """Write T tokens: keys [B, NG, T, Dk], values [B, NG, T, Dv] (None when inside the keys), on the device;
        row_start [B]. They go to the host store and, where they are sinks or recent, to the window (and to the
        held prefill context, while there is one)."""
        begin = self.length
        self.engine.append(keys, values)
        end = self.length
        self._last_chunk = (begin, keys, values)
        if self._held is not None:
            held_keys, held_values = self._held
            if end > held_keys.shape[2]:
                self._held = None
            else:
                held_keys[:, :, begin:end] = keys
                if held_values is not None:
                    held_values[:, :, begin:end] = values
        ring_begin = max(begin, end - self.ring_tokens)
        ring_index = self.sink_tokens + torch.arange(ring_begin, end, device=self.device) % self.ring_tokens
        self.keys.index_copy_(2, ring_index, keys[:, :, ring_begin - begin :])
        if values is not None:
            self.values.index_copy_(2, ring_index, values[:, :, ring_begin - begin :])
        self._write_sinks(keys, values, row_start, begin, end)

    def can_append_token(self, row_start: torch.Tensor) -> bool:
        """Whether append_token can write the next token: the store has room and every row's sinks are written
        (append wrote them with this very row_start)."""
        return (
            row_start is self._sinks_row_start
            and self.length >= self._sinks_end
            and self.store.can_append_token(self.device)
        )

    def append_token(
        self,
        keys: torch.Tensor,
        values: torch.Tensor | None,
        slot: torch.Tensor,
        row_start: torch.Tensor,
        block_max: torch.Tensor,
        block_min: torch.Tensor,
        block_size: int,
    ) -> None:
        """Write one decode token (keys [B, NG, 1, Dk], values [B, NG, 1, Dv] or None) at `slot`, a 0-dim int64 on
        the device equal to `length`, to the host store and the ring, and update its block's summaries block_max /
        block_min [B, NG, S // block_size, Dk]: one kernel (ops.append_token writing the pinned store through its
        mapped address), no host int in it (capturable)."""
        begin = self.length
        store = self.store
        separate_values = not store.values_in_keys
        ops.append_token(
            keys, values, store.token_keys, store.token_values if separate_values else None, block_max, block_min,
            slot, row_start, block_size, self.keys, self.values if separate_values else None, self.sink_tokens,
            self.ring_tokens, backend="triton" if store.pin_memory and self.device.type == "cuda" else "torch",
        )
        self.engine.token_written(slot)
        self._last_chunk = (begin, keys, values)

    def _write_sinks(
        self, keys: torch.Tensor, values: torch.Tensor | None, row_start: torch.Tensor, begin: int, end: int
    ) -> None:
        """Copy the tokens of slots [begin, end) that are sinks (slot row_start + j, j < sink_tokens) to the
        window; skipped, without a device sync, once every row's sinks lie before `begin`."""
        if not self.sink_tokens:
            return
        if row_start is not self._sinks_row_start:
            self._sinks_row_start = row_start
            self._sinks_end = int(row_start.max()) + self.sink_tokens
        if begin >= self._sinks_end:
            return
        sink_slots = row_start[:, None] + torch.arange(self.sink_tokens, device=self.device)  # [B, sink]
        in_chunk = ((sink_slots >= begin) & (sink_slots < end))[:, None, :, None]
        index = (sink_slots - begin).clamp(0, end - begin - 1)[:, None, :, None]
        for source, target in ((keys, self.keys), (values, self.values if values is not None else None)):
            if source is None:
                continue
            picked = source.gather(2, index.expand(-1, source.shape[1], -1, source.shape[3]))
            window = target[:, :, : self.sink_tokens]
            window.copy_(torch.where(in_chunk, picked.to(window.dtype), window))

    def recent_keys(self, begin: int, end: int) -> torch.Tensor:
        """Keys of slots [begin, end) from the ring, [B, NG, end - begin, Dk]; end - begin <= ring_tokens and the
        slots lie in one stretch of the ring (the caller asks for the start of one block)."""
        first = self.sink_tokens + begin % self.ring_tokens
        return self.keys[:, :, first : first + end - begin]

    def context(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys [B, NG, length, Dk] and values [B, NG, length, Dv] of every cached token on the device (for prefill
        attention and for dense decode steps, whose contexts fit the token budget): views of the held prefill
        context, or the older tokens copied from the host store followed by the last appended chunk as it came."""
        if self._held is not None:
            keys = self._held[0][:, :, : self.length]
            values = self._held[1]
            return keys, keys[..., : self.store.value_width] if values is None else values[:, :, : self.length]
        begin, keys, values = self._last_chunk
        if values is None:
            values = keys[..., : self.store.value_width]
        if begin == 0:
            return keys, values
        old_keys, old_values = self._read(0, begin)
        return torch.cat([old_keys, keys], dim=2), torch.cat([old_values, values], dim=2)

    def stored_keys(self, begin: int, end: int) -> torch.Tensor:
        """Keys of tokens [begin, end) on the device, [B, NG, end - begin, Dk]: from the held prefill context, or
        read from the host store."""
        if self._held is not None:
            return self._held[0][:, :, begin:end]
        return self._read(begin, end)[0]

    def _read(self, begin: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        """store.read_tokens(begin, end) onto the device, counted in context_read_bytes."""
        store = self.store
        token_bytes = store.block_bytes // store.block_size
        self.context_read_bytes += store.batch * store.num_groups * (end - begin) * token_bytes
        return store.read_tokens(begin, end, self.device)

    # ---- batch and length changes --------------------------------------------------------------------

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (reorder, repeat) the batch rows `rows` [B'] int64; pending copies are finished first."""
        self.engine.select_rows(rows)
        self._last_chunk = None
        self._sinks_row_start = None
        self._held = None

    def crop(self, length: int) -> None:
        """Keep the first `length` tokens, refilling the ring with the newest of them from the host store."""
        self.engine.crop(length)
        self._last_chunk = None
        self._sinks_row_start = None
        self._held = None
        ring_begin = max(0, length - self.ring_tokens)
        if length > ring_begin:
            ring_index = self.sink_tokens + torch.arange(ring_begin, length, device=self.device) % self.ring_tokens
            keys, values = self.store.read_tokens(ring_begin, length, self.device)
            self.keys.index_copy_(2, ring_index, keys)
            if not self.store.values_in_keys:
                self.values.index_copy_(2, ring_index, values)

    def reset(self) -> None:
        self.engine.reset()
        self._last_chunk = None
        self._sinks_row_start = None
        self._held = None

    def memory_bytes(self) -> tuple[int, int]:
        """(device bytes, host bytes) held: the window and slot buffers and the resident set's maps (its step and
        counters, a few words, left out) and, during a chunked prefill, the held context; the pinned store."""
        resident = self.engine.resident
        buffers = [self.engine.key_buffer, resident.slot_block, resident.slot_last_wanted, resident.block_slot]
        if self.engine.separate_value_buffer is not None:
            buffers.append(self.engine.separate_value_buffer)
        if self._held is not None:
            buffers.extend(tensor for tensor in self._held if tensor is not None)
        device = sum(tensor.numel() * tensor.element_size() for tensor in buffers)
        return device, self.store.memory_bytes()
