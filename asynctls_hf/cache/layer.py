"""One decoder layer's share of the AsyncTLS cache: K/V storage plus the two-level index."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from transformers.cache_utils import CacheLayerMixin

from asynctls_hf import ops
from asynctls_hf.cache.offloaded import OffloadedKV, resident_set_bytes, window_layout
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.offload import Transport

TransportFor = Callable[[torch.device], Transport]  # the transport an offloaded layer on that device copies with

_GROWTH_QUANTUM = 1024


class AsyncTLSLayer(CacheLayerMixin):
    """K/V (or MLA latent) storage of one layer, its block summaries, token labels and channel choice.

    Storage is preallocated for `max_length` slots when the caller knows it (generate() does), rounded up to
    a multiple of the block size, and grows by doubling past it. Row b's real tokens occupy slots
    [row_start[b], length): left padding keeps every row's newest token in the same slot.

    Resident (the default) or offloaded (`place(True, transport)` before the first append): then `keys` and
    `values` are not stored on the device; `offloaded` (an OffloadedKV) keeps them in pinned host memory, with
    the sinks, the recent tokens and the resident block slots on the device. The index is on the device either way.

    Tensors (NG groups, Dk key width, Dv value width, C label channels):
        keys [B, NG, capacity, Dk]; values [B, NG, capacity, Dv] (a view of keys[..., :Dv] when the values
        are a prefix of the keys, as MLA's latent is)
        block_max, block_min [B, NG, capacity // block_size, Dk]
        label_codes [B, NG, capacity, W]; label_scale, label_zero [B, NG, capacity] float32
        label_channels [B, NG, C] int64, chosen from the prompt on the first append
    """

    is_compileable = False
    is_croppable = True
    is_sliding = False

    def __init__(
        self,
        config: AsyncTLSConfig,
        num_groups: int,
        key_width: int,
        value_width: int,
        values_in_keys: bool = False,
        max_length: int | None = None,
    ):
        super().__init__()
        if values_in_keys and value_width > key_width:
            raise ValueError(f"values_in_keys needs value_width ({value_width}) <= key_width ({key_width})")
        self.config = config
        self.num_groups = num_groups
        self.key_width = key_width
        self.value_width = value_width
        self.values_in_keys = values_in_keys
        self.max_length = max_length
        self.num_label_channels = config.label_channels_for(key_width, latent=values_in_keys)
        self.token_scoring = config.token_scoring_for(latent=values_in_keys)
        self.offload = False
        self.transport_for: TransportFor | None = None
        self.offloaded: OffloadedKV | None = None
        self.length = 0
        self.capacity = 0
        self.block_max = self.block_min = None
        self.label_codes = self.label_scale = self.label_zero = None
        self.label_channels = None
        # While a prompt is prefilled in chunks: per row and group, sum |q_c| over its real queries and sum |k_c|
        # over its real keys so far ([B, NG, Dk] float32 each); the channels and labels come after the last chunk.
        self.channel_statistics: tuple[torch.Tensor, torch.Tensor] | None = None
        self.defer_labels = False
        # Offloaded, during a chunked prefill of this many tokens where the device has room: keep them on the
        # device as well (OffloadedKV.hold_prefill_context, from the first append).
        self.prefill_context_tokens: int | None = None

    # ---- storage -------------------------------------------------------------------------------------

    def place(self, offload: bool, transport_for: TransportFor | None = None) -> None:
        """Keep K/V on the device (offload False) or in pinned host memory, its copies travelling by
        transport_for(the layer's device); decided before the first append."""
        if self.is_initialized:
            raise RuntimeError("a layer's placement is decided before its first append")
        if offload and transport_for is None:
            raise ValueError("an offloaded layer needs a transport")
        self.offload, self.transport_for = offload, transport_for

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor | None = None) -> None:
        """Allocate empty storage for the batch, dtype and device of `key_states` [B, NG, T, Dk]."""
        self.dtype, self.device = key_states.dtype, key_states.device
        self.batch_size = key_states.shape[0]
        capacity = self._round_capacity(self.max_length or key_states.shape[2])
        if self.offload:
            self.offloaded = OffloadedKV(
                self.config, self.batch_size, self.num_groups, self.key_width, self.value_width,
                self.values_in_keys, self.dtype, self.device, capacity, self.transport_for(self.device),
            )
            self.keys, self.values = self.offloaded.keys, self.offloaded.values
        self._allocate(capacity)
        self.is_initialized = True

    def _round_capacity(self, slots: int) -> int:
        block_size = self.config.block_size
        quantum = block_size if slots == self.max_length else max(_GROWTH_QUANTUM, block_size)
        return -(-max(slots, 1) // quantum) * quantum

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate the device storage for `capacity` slots, keeping the first `length` slots (the offloaded
        K/V grows in its own store)."""
        old = self._storage() if self.capacity else {}
        layout = self._storage_layout(self.batch_size, capacity, self.dtype, self.offload)
        layout.pop("offloaded_keys", None)
        layout.pop("offloaded_values", None)
        new = {
            name: torch.zeros(shape, dtype=dtype, device=self.device) for name, (shape, dtype) in layout.items()
        }
        for name, tensor in new.items():
            if name in old:
                kept = min(
                    old[name].shape[2], self.length if name not in ("block_max", "block_min") else tensor.shape[2]
                )
                tensor[:, :, :kept] = old[name][:, :, :kept]
        self._set_storage(new)
        self.capacity = capacity

    def _storage_layout(
        self, batch: int, capacity: int, dtype: torch.dtype, offload: bool
    ) -> dict[str, tuple[tuple, torch.dtype]]:
        """Shape and dtype of every device storage tensor for `batch` rows of `capacity` slots of K/V in `dtype`,
        resident or offloaded (then the device buffer of the window and the block slots replaces keys/values)."""
        groups, blocks = self.num_groups, capacity // self.config.block_size
        if offload:
            _, window = window_layout(self.config)
            buffer = window + self.config.top_blocks * self.config.block_size
            layout = {"offloaded_keys": ((batch, groups, buffer, self.key_width), dtype)}
            if not self.values_in_keys:
                layout["offloaded_values"] = ((batch, groups, buffer, self.value_width), dtype)
        else:
            layout = {"keys": ((batch, groups, capacity, self.key_width), dtype)}
            if not self.values_in_keys:
                layout["values"] = ((batch, groups, capacity, self.value_width), dtype)
        layout |= {
            "block_max": ((batch, groups, blocks, self.key_width), dtype),
            "block_min": ((batch, groups, blocks, self.key_width), dtype),
            "label_codes": (
                (batch, groups, capacity, self._label_width()),
                dtype if self.config.label_bits == 16 else torch.uint8,
            ),
            "label_scale": ((batch, groups, capacity), torch.float32),
            "label_zero": ((batch, groups, capacity), torch.float32),
        }
        return layout

    def _preallocated_capacity(self, slots: int) -> int:
        return -(-max(slots, 1) // self.config.block_size) * self.config.block_size

    def storage_bytes(self, batch: int, slots: int, dtype: torch.dtype, offload: bool = False) -> int:
        """Device bytes this layer allocates for `batch` rows of `slots` slots (as preallocated for
        max_length = slots) with K/V in `dtype`, resident or offloaded, the chosen label channels included."""
        capacity = self._preallocated_capacity(slots)
        layout = self._storage_layout(batch, capacity, dtype, offload)
        layout["label_channels"] = ((batch, self.num_groups, self.num_label_channels), torch.int64)
        resident_set = resident_set_bytes(self.config, batch, self.num_groups, capacity) if offload else 0
        return sum(math.prod(shape) * dtype.itemsize for shape, dtype in layout.values()) + resident_set

    def host_bytes(self, batch: int, slots: int, dtype: torch.dtype) -> int:
        """Pinned host bytes this layer's store takes, offloaded, for `batch` rows of `slots` slots in `dtype`."""
        return self.kv_bytes(batch, self._preallocated_capacity(slots), dtype)

    def kv_bytes(self, batch: int, tokens: int, dtype: torch.dtype) -> int:
        """Bytes of the keys and values (once, for MLA's values inside the keys) of `tokens` tokens of `batch`
        rows in `dtype`."""
        widths = self.key_width + (0 if self.values_in_keys else self.value_width)
        return batch * self.num_groups * tokens * widths * dtype.itemsize

    def _label_width(self) -> int:
        channels = self.num_label_channels
        return channels // 2 if self.config.label_bits == 4 else channels

    def _storage(self) -> dict[str, torch.Tensor]:
        """Every device tensor with a batch dimension this layer owns (label_channels once chosen; keys and values
        when resident, values unless a view of keys)."""
        tensors = {} if self.offloaded is not None else {"keys": self.keys}
        tensors |= {
            "block_max": self.block_max,
            "block_min": self.block_min,
            "label_codes": self.label_codes,
            "label_scale": self.label_scale,
            "label_zero": self.label_zero,
        }
        if not self.values_in_keys and self.offloaded is None:
            tensors["values"] = self.values
        if self.label_channels is not None:
            tensors["label_channels"] = self.label_channels
        return tensors

    def _set_storage(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, tensor in tensors.items():
            setattr(self, name, tensor)
        if self.offloaded is not None:
            self.keys, self.values = self.offloaded.keys, self.offloaded.values
        elif self.values_in_keys:
            self.values = self.keys[..., : self.value_width]
        self.batch_size = self.label_codes.shape[0]

    # ---- appending and indexing ----------------------------------------------------------------------

    def append(
        self, key_states: torch.Tensor, value_states: torch.Tensor | None, query: torch.Tensor, row_start: torch.Tensor
    ) -> None:
        """Write T new tokens and index them.

        key_states [B, NG, T, Dk]; value_states [B, NG, T, Dv] (None when the values are a prefix of the keys);
        query [B, NG * G, T, Dk] the queries of the same forward, used once to choose the label channels;
        row_start [B].
        """
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        begin = self.length
        end = begin + key_states.shape[2]
        if end > self.capacity:
            self._allocate(self._round_capacity(max(end, 2 * self.capacity)))
        new_keys = key_states.to(self.dtype)
        if self.offloaded is None:
            self.keys[:, :, begin:end] = key_states
            if not self.values_in_keys:
                self.values[:, :, begin:end] = value_states
            self.length = end
            ops.update_block_summaries(
                self.keys, self.block_max, self.block_min, row_start, begin, end, self.config.block_size,
                backend=self.config.backend,
            )
        else:
            if self.prefill_context_tokens is not None:
                self.offloaded.hold_prefill_context(self.prefill_context_tokens)
                self.prefill_context_tokens = None
            block_begin = begin // self.config.block_size * self.config.block_size
            earlier = self.offloaded.recent_keys(block_begin, begin).clone()  # read before the ring moves on
            self.offloaded.append(new_keys, None if value_states is None else value_states.to(self.dtype), row_start)
            self.length = end
            self._update_block_summaries_from(torch.cat([earlier, new_keys], dim=2), block_begin, begin, row_start)
        if self.label_channels is None and self.defer_labels:
            self._accumulate_channel_statistics(query, new_keys, row_start, begin)
            return
        if self.label_channels is None:
            self.label_channels = self._choose_label_channels(query, row_start, begin)
        self._write_labels(new_keys, begin, end)

    def can_append_in_place(self, row_start: torch.Tensor) -> bool:
        """Whether append_token can write the next token (row_start [B], as append gets it): indexed, with a free
        slot, and, offloaded, past every row's sinks."""
        if self.label_channels is None or self.length >= self.capacity:
            return False
        return self.offloaded is None or self.offloaded.can_append_token(row_start)

    def append_token(
        self, key: torch.Tensor, value: torch.Tensor | None, slot: torch.Tensor, row_start: torch.Tensor
    ) -> None:
        """Write one decode token at `slot` (0-dim int64 on the device, = length) and index it, with no host int
        in any kernel argument, so that a CUDA graph can capture it (see can_append_in_place).

        key [B, NG, 1, Dk]; value [B, NG, 1, Dv] (None when the values are a prefix of the keys); row_start [B].
        The block summaries come out as ops.update_block_summaries computes them: the block's max/min over its
        real slots, zeros while it has none.
        """
        key = key.to(self.dtype)
        value = None if value is None else value.to(self.dtype)
        if self.offloaded is None:
            ops.append_token(
                key, value, self.keys, None if self.values_in_keys else self.values, self.block_max, self.block_min,
                slot, row_start, self.config.block_size, backend=self.config.backend,
            )
        else:
            self.offloaded.append_token(
                key, value, slot, row_start, self.block_max, self.block_min, self.config.block_size
            )
        self.length += 1
        ops.append_token_labels(
            key, self.label_channels, self.label_codes, self.label_scale, self.label_zero, slot,
            self.config.label_bits, backend=self.config.backend,
        )

    def _update_block_summaries_from(
        self, span: torch.Tensor, block_begin: int, begin: int, row_start: torch.Tensor
    ) -> None:
        """Summaries of the blocks of slots [begin, length) from `span` [B, NG, length - block_begin, Dk], the keys
        of slots [block_begin, length), block_begin the first slot of begin's block."""
        first_block = block_begin // self.config.block_size
        ops.update_block_summaries(
            span, self.block_max[:, :, first_block:], self.block_min[:, :, first_block:], row_start - block_begin,
            begin - block_begin, span.shape[2], self.config.block_size, backend=self.config.backend,
        )

    def context_kv(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys [B, NG, length, Dk] and values [B, NG, length, Dv] of every cached token, on the device: views of
        the storage when resident, a copy when offloaded (prefill attention and dense decode steps)."""
        if self.offloaded is None:
            return self.keys[:, :, : self.length], self.values[:, :, : self.length]
        return self.offloaded.context()

    def _channel_terms(
        self, query: torch.Tensor, keys: torch.Tensor, row_start: torch.Tensor, first_query_slot: int,
        first_key_slot: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per row and group, sum |q_c| over the real queries of query [B, NG * G, T, Dk] (slots from
        first_query_slot) and sum |k_c| over the real keys of keys [B, NG, L, Dk] (slots from first_key_slot);
        [B, NG, Dk] float32 each."""
        batch, heads, tokens, width = query.shape
        query_slots = torch.arange(first_query_slot, first_query_slot + tokens, device=query.device)
        real_query = (query_slots[None, :] >= row_start[:, None]).to(torch.float32)  # [B, T]
        query_abs = query.float().abs().view(batch, self.num_groups, heads // self.num_groups, tokens, width)
        query_sum = torch.einsum("bghtd,bt->bgd", query_abs, real_query)
        key_slots = torch.arange(first_key_slot, first_key_slot + keys.shape[2], device=query.device)
        real_key = (key_slots[None, :] >= row_start[:, None]).to(torch.float32)  # [B, L]
        key_sum = torch.einsum("bgld,bl->bgd", keys.float().abs(), real_key)
        return query_sum, key_sum

    def _top_channels(self, query_sum: torch.Tensor, key_sum: torch.Tensor) -> torch.Tensor:
        """The C channels with the largest mean |q_c| * mean |k_c| (the sums' product ranks them alike),
        [B, NG, C] int64, ascending."""
        return (query_sum * key_sum).topk(self.num_label_channels, dim=-1).indices.sort(dim=-1).values

    def _choose_label_channels(
        self, query: torch.Tensor, row_start: torch.Tensor, first_query_slot: int
    ) -> torch.Tensor:
        """Per row and group, the C channels with the largest mean |q_c| * mean |k_c| over real tokens: the
        queries of this forward, every cached key."""
        return self._top_channels(*self._channel_terms(query, self.context_kv()[0], row_start, first_query_slot, 0))

    def _accumulate_channel_statistics(
        self, query: torch.Tensor, new_keys: torch.Tensor, row_start: torch.Tensor, begin: int
    ) -> None:
        """Add one prefill chunk's queries and keys (slots from `begin`) to the channel statistics."""
        query_sum, key_sum = self._channel_terms(query, new_keys, row_start, begin, begin)
        if self.channel_statistics is None:
            self.channel_statistics = (query_sum, key_sum)
        else:
            self.channel_statistics[0].add_(query_sum)
            self.channel_statistics[1].add_(key_sum)

    def write_deferred_labels(self, chunk_tokens: int) -> None:
        """After a chunked prefill: choose the label channels from the whole prompt's statistics (as one forward
        over it would) and write the labels of every cached token, reading the keys `chunk_tokens` at a time."""
        self.defer_labels = False
        statistics, self.channel_statistics = self.channel_statistics, None
        if statistics is None or self.label_channels is not None:
            return
        self.label_channels = self._top_channels(*statistics)
        for begin in range(0, self.length, chunk_tokens):
            end = min(begin + chunk_tokens, self.length)
            keys = self.keys[:, :, begin:end] if self.offloaded is None else self.offloaded.stored_keys(begin, end)
            self._write_labels(keys.to(self.dtype), begin, end)

    def release_prefill_context(self) -> None:
        """End of a chunked prefill: drop the device copy of an offloaded layer's prompt (hold_prefill_context)."""
        self.prefill_context_tokens = None
        if self.offloaded is not None:
            self.offloaded.release_prefill_context()

    def _labels_of(self, new_keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Labels (codes [B, NG, T, W], scale and zero [B, NG, T]) of keys new_keys [B, NG, T, Dk]."""
        channels = self.label_channels[:, :, None, :].expand(-1, -1, new_keys.shape[2], -1)
        channel_keys = new_keys.gather(-1, channels)
        return ops.quantize_labels(channel_keys, self.config.label_bits, backend=self.config.backend)

    def _write_labels(self, new_keys: torch.Tensor, begin: int, end: int) -> None:
        """Labels of slots [begin, end) from their keys new_keys [B, NG, end - begin, Dk]."""
        codes, scale, zero = self._labels_of(new_keys)
        self.label_codes[:, :, begin:end] = codes
        self.label_scale[:, :, begin:end] = scale
        self.label_zero[:, :, begin:end] = zero

    def rebuild_index(self, row_start: torch.Tensor) -> None:
        """Recompute the block summaries from the stored keys after crop: all of them when resident, the last
        (partial) block from the ring when offloaded (the blocks before it did not change)."""
        if self.length and self.offloaded is not None:
            block_begin = (self.length - 1) // self.config.block_size * self.config.block_size
            self._update_block_summaries_from(
                self.offloaded.recent_keys(block_begin, self.length), block_begin, block_begin, row_start
            )
        elif self.length:
            ops.update_block_summaries(
                self.keys,
                self.block_max,
                self.block_min,
                row_start,
                0,
                self.length,
                self.config.block_size,
                backend=self.config.backend,
            )

    # ---- transformers Cache layer API ----------------------------------------------------------------

    def update(self, key_states, value_states, *args, **kwargs):
        raise NotImplementedError(
            "AsyncTLSLayer is written by the AsyncTLS attention forward (asynctls_hf.patch), not by Cache.update"
        )

    def get_seq_length(self) -> int:
        return self.length

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.length + query_length, 0

    def get_max_length(self) -> int:
        return -1

    get_max_cache_shape = get_max_length

    def reset(self) -> None:
        """Forget every token and the channel choice, keeping the storage."""
        self.length = 0
        self.label_channels = None
        self.channel_statistics = None
        self.defer_labels = False
        self.prefill_context_tokens = None
        if self.offloaded is not None:
            self.offloaded.reset()

    def crop(self, length: int) -> None:
        """Keep the first `length` slots; the caller rebuilds block summaries with rebuild_index."""
        self.length = length
        if self.offloaded is not None:
            self.offloaded.crop(length)

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (and reorder, or repeat) the batch rows `rows` [B'] int64 of every per-row tensor."""
        if not self.is_initialized:
            return
        if self.offloaded is not None:
            self.offloaded.select_rows(rows)
        self._set_storage(
            {name: tensor.index_select(0, rows.to(tensor.device)) for name, tensor in self._storage().items()}
        )

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self.select_rows(beam_idx)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self.select_rows(indices)

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.is_initialized:
            self.select_rows(torch.arange(self.batch_size, device=self.device).repeat_interleave(repeats))

    def memory_bytes(self) -> int:
        """Device bytes held by this layer's storage and index."""
        owned = sum(tensor.numel() * tensor.element_size() for tensor in self._storage().values())
        return owned + (self.offloaded.memory_bytes()[0] if self.offloaded is not None else 0)

    def host_memory_bytes(self) -> int:
        """Pinned host bytes held by this layer's store (0 when resident)."""
        return self.offloaded.memory_bytes()[1] if self.offloaded is not None else 0
