"""HostBlockStore: one layer's full K/V (or MLA latent) in host memory, laid out block-major for fast gathers."""

from __future__ import annotations

import torch

from asynctls_hf import ops
from asynctls_hf.offload.pinned import page_locked_empty


def wait_for_device_writes() -> None:
    """Wait for every kernel that may still write pinned host storage (before the host reads it)."""
    for device in range(torch.cuda.device_count()):
        torch.cuda.synchronize(device)


def default_pin_memory() -> bool:
    """Pin host storage when a CUDA device can read it (pinned memory is what makes H2D copies asynchronous)."""
    return torch.cuda.is_available()


class HostBlockStore:
    """One layer's keys and values for every cached token, in host memory, block-major.

    Storage: `entries` [B, NG, n_blocks, block_size, Dk + Dv], each token's key and value side by side, so that
    fetching a token is one contiguous read (a block, one contiguous range); `keys` [..., Dk] and `values`
    [..., Dv] are views of it. With `values_in_keys` (MLA: the value is the first Dv channels of the latent+rope key)
    the entries are the keys, [..., Dk], and `values` is a view of their first Dv channels. The same memory seen per
    token is `token_entries` [B, NG, capacity, Dk + Dv] (`token_keys`, `token_values`: views), capacity = n_blocks *
    block_size.

    Tokens are appended in chunks of any length (prefill chunks, then one per decode step); storage grows by
    doubling. `pin_memory`: None pins when CUDA is available; False forces pageable memory (tests). `write_stream`
    (a CUDA stream, the offload transport's): chunks written from the GPU are written on it, overlapped with the
    compute stream's work; device reads (read_tokens, wait_for_writes) are ordered after them by an event.
    """

    def __init__(
        self,
        batch: int,
        num_groups: int,
        key_width: int,
        value_width: int,
        block_size: int,
        dtype: torch.dtype,
        *,
        values_in_keys: bool = False,
        capacity_tokens: int = 0,
        pin_memory: bool | None = None,
        write_stream: torch.cuda.Stream | None = None,
    ):
        if values_in_keys and value_width > key_width:
            raise ValueError(f"values inside the keys need value_width <= key_width, got {value_width} > {key_width}")
        self.batch = batch
        self.num_groups = num_groups
        self.key_width = key_width
        self.value_width = value_width
        self.block_size = block_size
        self.dtype = dtype
        self.values_in_keys = values_in_keys
        self.pin_memory = default_pin_memory() if pin_memory is None else pin_memory
        self.length = 0
        self.write_stream = write_stream
        self._writes_done: torch.cuda.Event | None = None  # recorded on write_stream after its latest write
        self.entries: torch.Tensor | None = None
        self._allocate(-(-capacity_tokens // block_size))

    # ---- layout --------------------------------------------------------------------------------------

    @property
    def n_blocks(self) -> int:
        """Blocks holding at least one token (the last one may be partial)."""
        return -(-self.length // self.block_size)

    @property
    def capacity_blocks(self) -> int:
        return self.entries.shape[2]

    @property
    def entry_width(self) -> int:
        """Channels of a token's entry: its key, then its value unless the value is inside the key."""
        return self.key_width + (0 if self.values_in_keys else self.value_width)

    @property
    def block_bytes(self) -> int:
        """Bytes one (row, group, block) moves when copied: its keys, plus its values unless they are in the keys."""
        return self.block_size * self.entry_width * self.dtype.itemsize

    @property
    def keys(self) -> torch.Tensor:
        """[B, NG, n_blocks, block_size, Dk]: a view of the entries."""
        return self.entries if self.values_in_keys else self.entries[..., : self.key_width]

    @property
    def values(self) -> torch.Tensor:
        """[B, NG, n_blocks, block_size, Dv]: a view of the entries (of the keys' first Dv channels with
        values_in_keys)."""
        return self.entries[..., : self.value_width] if self.values_in_keys else self.entries[..., self.key_width :]

    @property
    def token_entries(self) -> torch.Tensor:
        """The entries per token, [B, NG, capacity, Dk + Dv] (a view; slots past `length` hold nothing)."""
        return self.entries.flatten(2, 3)

    @property
    def token_keys(self) -> torch.Tensor:
        """The keys per token, [B, NG, capacity, Dk] (a view)."""
        return self.keys.flatten(2, 3)

    @property
    def token_values(self) -> torch.Tensor:
        """The values per token, [B, NG, capacity, Dv] (a view)."""
        return self.values.flatten(2, 3)

    def _empty(self, shape: tuple[int, ...]) -> torch.Tensor:
        if self.pin_memory:
            return page_locked_empty(shape, self.dtype)
        return torch.empty(shape, dtype=self.dtype)

    def _allocate(self, capacity_blocks: int, rows: torch.Tensor | None = None) -> None:
        """New storage of `capacity_blocks` blocks holding the first `length` tokens of rows `rows` (all by default)."""
        batch = self.batch if rows is None else len(rows)
        if self.pin_memory and self.entries is not None:
            wait_for_device_writes()
        kept_blocks = min(self.n_blocks, capacity_blocks)
        old = self.entries
        self.entries = self._empty((batch, self.num_groups, capacity_blocks, self.block_size, self.entry_width))
        if old is not None and kept_blocks:
            kept = old[:, :, :kept_blocks]
            self.entries[:, :, :kept_blocks] = kept if rows is None else kept.index_select(0, rows)
        self.batch = batch

    # ---- writing -------------------------------------------------------------------------------------

    def append(self, keys: torch.Tensor, values: torch.Tensor | None) -> tuple[int, int]:
        """Write T tokens after the cached ones; returns the token range (begin, end) they now occupy.

        keys [B, NG, T, Dk] and values [B, NG, T, Dv] (values None when they are inside the keys), on any
        device. From a CUDA device into pinned storage a kernel writes them, in order on the current stream and
        without waiting for it (readers are kernels or stream-ordered copies too); otherwise they are copied at once.
        """
        if keys.shape[:2] != (self.batch, self.num_groups) or keys.shape[3] != self.key_width:
            raise ValueError(
                f"keys must be [{self.batch}, {self.num_groups}, T, {self.key_width}], got {tuple(keys.shape)}"
            )
        if (values is None) != self.values_in_keys:
            raise ValueError("pass values exactly when they are not inside the keys (values_in_keys=False)")
        begin = self.length
        end = begin + keys.shape[2]
        needed_blocks = -(-end // self.block_size)
        if needed_blocks > self.capacity_blocks:
            self._allocate(max(needed_blocks, 2 * self.capacity_blocks))
        if keys.is_cuda and self.pin_memory:
            self._write_from_device(keys if values is None else torch.cat((keys, values.to(keys.dtype)), dim=-1),
                                    begin)
        else:
            self.token_keys[:, :, begin:end] = keys.to("cpu", self.dtype)
            if values is not None:
                self.token_values[:, :, begin:end] = values.to("cpu", self.dtype)
        self.length = end
        return begin, end

    def can_append_token(self, device: torch.device) -> bool:
        """Whether a decode token can be written at slot `length` from `device` (token_written then counts it): room
        in the storage, and the token's writer a kernel (CUDA to pinned) or a CPU copy."""
        room = self.length < self.capacity_blocks * self.block_size
        return room and (device.type == "cpu" or (device.type == "cuda" and self.pin_memory))

    def token_written(self) -> None:
        """A decode token was written at slot `length` of token_keys and token_values by the caller's kernel
        (ops.append_token, see can_append_token): count it."""
        self.length += 1

    def _write_from_device(self, source: torch.Tensor, begin: int) -> None:
        """Entries source [B, NG, T, Dk + Dv] on a CUDA device into the store at tokens begin ...: by a kernel on
        write_stream once the current stream has produced `source`, or on the current stream."""
        rows = source.to(self.dtype).reshape(-1, self.entry_width)  # on the current stream
        storage = self.entries.view(-1, self.entry_width)
        target_rows = self._token_rows(begin, source.shape[2], source.device)
        source_rows = torch.arange(len(target_rows), device=source.device)
        valid = torch.ones_like(source_rows, dtype=torch.bool)
        if self.write_stream is None:
            ops.copy_rows(rows, storage, source_rows, target_rows, valid, backend="triton")
            return
        produced = torch.cuda.Event()
        produced.record()
        with torch.cuda.stream(self.write_stream):
            self.write_stream.wait_event(produced)
            ops.copy_rows(rows, storage, source_rows, target_rows, valid, backend="triton")
            self._writes_done = torch.cuda.Event()
            self._writes_done.record(self.write_stream)
        for tensor in (rows, target_rows, source_rows, valid):
            tensor.record_stream(self.write_stream)

    def wait_for_writes(self) -> None:
        """Make the current stream wait until every chunk written on write_stream has landed (no host wait)."""
        if self._writes_done is not None:
            torch.cuda.current_stream(self._writes_done.device).wait_event(self._writes_done)

    # ---- reading -------------------------------------------------------------------------------------

    def read_tokens(self, begin: int, end: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys [B, NG, end - begin, Dk] and values [B, NG, end - begin, Dv] of tokens [begin, end) on `device`.

        To a CUDA device from pinned storage a kernel reads them on the current stream, after (and without waiting
        for) the kernels that wrote them; otherwise they are copied at once."""
        if not (device.type == "cuda" and self.pin_memory):
            keys = self.token_keys[:, :, begin:end].to(device)
            if self.values_in_keys:
                return keys, keys[..., : self.value_width]
            return keys, self.token_values[:, :, begin:end].to(device)
        self.wait_for_writes()
        rows = self._token_rows(begin, end - begin, device)
        shape = (self.batch, self.num_groups, end - begin)
        keys = torch.empty((*shape, self.key_width), dtype=self.dtype, device=device)
        values = None if self.values_in_keys else torch.empty((*shape, self.value_width), dtype=self.dtype,
                                                               device=device)
        ops.copy_rows(self.entries.view(-1, self.entry_width), keys.view(-1, self.key_width), rows,
                      torch.arange(len(rows), device=device), torch.ones_like(rows, dtype=torch.bool),
                      second_target=None if values is None else values.view(-1, self.value_width), backend="triton")
        return keys, keys[..., : self.value_width] if values is None else values

    def _token_rows(self, begin: int | torch.Tensor, tokens: int, device: torch.device) -> torch.Tensor:
        """Rows of tokens [begin, begin + tokens) of every (row, group) in the storage seen as [B * NG * capacity,
        D], [B * NG * tokens] int64 in (row, group, token) order."""
        capacity = self.capacity_blocks * self.block_size
        return (
            torch.arange(self.batch * self.num_groups, device=device)[:, None] * capacity + begin
            + torch.arange(tokens, device=device)[None, :]
        ).flatten()

    # ---- batch and length changes --------------------------------------------------------------------

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (reorder, repeat) the batch rows `rows` [B'] int64: beam-search reorder or batch selection."""
        self._allocate(self.capacity_blocks, rows.to("cpu"))

    def crop(self, length: int) -> None:
        """Keep the first `length` tokens."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot crop to {length} tokens a store holding {self.length}")
        self.length = length

    def reset(self) -> None:
        """Forget every token, keeping the storage."""
        self.length = 0

    def memory_bytes(self) -> int:
        """Bytes of host storage held."""
        return self.entries.numel() * self.entries.element_size()
