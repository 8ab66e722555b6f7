"""One decoder layer's share of the AsyncTLS cache: K/V storage plus the two-level index."""

from __future__ import annotations

import math

import torch
from transformers.cache_utils import CacheLayerMixin

from asynctls_hf import ops
from asynctls_hf.config import AsyncTLSConfig

_GROWTH_QUANTUM = 1024


class AsyncTLSLayer(CacheLayerMixin):
    """K/V (or MLA latent) storage of one layer, its block summaries, token labels and channel choice.

    Storage is preallocated for `max_length` slots when the caller knows it (generate() does), rounded up to
    a multiple of the block size, and grows by doubling past it. Row b's real tokens occupy slots
    [row_start[b], length): left padding keeps every row's newest token in the same slot.

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
        self.num_label_channels = config.label_channels_for(key_width)
        self.length = 0
        self.capacity = 0
        self.block_max = self.block_min = None
        self.label_codes = self.label_scale = self.label_zero = None
        self.label_channels = None

    # ---- storage -------------------------------------------------------------------------------------

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor | None = None) -> None:
        """Allocate empty storage for the batch, dtype and device of `key_states` [B, NG, T, Dk]."""
        self.dtype, self.device = key_states.dtype, key_states.device
        self.batch_size = key_states.shape[0]
        self._allocate(self._round_capacity(self.max_length or key_states.shape[2]))
        self.is_initialized = True

    def _round_capacity(self, slots: int) -> int:
        block_size = self.config.block_size
        quantum = block_size if slots == self.max_length else max(_GROWTH_QUANTUM, block_size)
        return -(-max(slots, 1) // quantum) * quantum

    def _allocate(self, capacity: int) -> None:
        """(Re)allocate storage for `capacity` slots, keeping the first `length` slots."""
        old = self._storage() if self.capacity else {}
        new = {
            name: torch.zeros(shape, dtype=dtype, device=self.device)
            for name, (shape, dtype) in self._storage_layout(self.batch_size, capacity, self.dtype).items()
        }
        for name, tensor in new.items():
            if name in old:
                kept = min(
                    old[name].shape[2], self.length if name not in ("block_max", "block_min") else tensor.shape[2]
                )
                tensor[:, :, :kept] = old[name][:, :, :kept]
        self._set_storage(new)
        self.capacity = capacity

    def _storage_layout(self, batch: int, capacity: int, dtype: torch.dtype) -> dict[str, tuple[tuple, torch.dtype]]:
        """Shape and dtype of every storage tensor for `batch` rows of `capacity` slots of K/V in `dtype`."""
        groups, blocks = self.num_groups, capacity // self.config.block_size
        layout = {
            "keys": ((batch, groups, capacity, self.key_width), dtype),
            "block_max": ((batch, groups, blocks, self.key_width), dtype),
            "block_min": ((batch, groups, blocks, self.key_width), dtype),
            "label_codes": (
                (batch, groups, capacity, self._label_width()),
                dtype if self.config.label_bits == 16 else torch.uint8,
            ),
            "label_scale": ((batch, groups, capacity), torch.float32),
            "label_zero": ((batch, groups, capacity), torch.float32),
        }
        if not self.values_in_keys:
            layout["values"] = ((batch, groups, capacity, self.value_width), dtype)
        return layout

    def storage_bytes(self, batch: int, slots: int, dtype: torch.dtype) -> int:
        """Bytes this layer allocates for `batch` rows of `slots` slots (as preallocated for max_length = slots)
        with K/V in `dtype`, the chosen label channels included."""
        layout = self._storage_layout(batch, -(-max(slots, 1) // self.config.block_size) * self.config.block_size,
                                      dtype)
        layout["label_channels"] = ((batch, self.num_groups, self.num_label_channels), torch.int64)
        return sum(math.prod(shape) * dtype.itemsize for shape, dtype in layout.values())

    def _label_width(self) -> int:
        channels = self.num_label_channels
        return channels // 2 if self.config.label_bits == 4 else channels

    def _storage(self) -> dict[str, torch.Tensor]:
        """Every tensor with a batch dimension (label_channels once chosen; values unless a view of keys)."""
        tensors = {
            "keys": self.keys,
            "block_max": self.block_max,
            "block_min": self.block_min,
            "label_codes": self.label_codes,
            "label_scale": self.label_scale,
            "label_zero": self.label_zero,
        }
        if not self.values_in_keys:
            tensors["values"] = self.values
        if self.label_channels is not None:
            tensors["label_channels"] = self.label_channels
        return tensors

    def _set_storage(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, tensor in tensors.items():
            setattr(self, name, tensor)
        if self.values_in_keys:
            self.values = self.keys[..., : self.value_width]
        self.batch_size = self.keys.shape[0]

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
        self.keys[:, :, begin:end] = key_states
        if not self.values_in_keys:
            self.values[:, :, begin:end] = value_states
        self.length = end
        ops.update_block_summaries(
            self.keys,
            self.block_max,
            self.block_min,
            row_start,
            begin,
            end,
            self.config.block_size,
            backend=self.config.backend,
        )
        if self.label_channels is None:
            self.label_channels = self._choose_label_channels(query, row_start, begin)
        self._write_labels(begin, end)

    def _choose_label_channels(
        self, query: torch.Tensor, row_start: torch.Tensor, first_query_slot: int
    ) -> torch.Tensor:
        """Per row and group, the C channels with the largest mean |q_c| * mean |k_c| over real tokens."""
        batch, heads, tokens, width = query.shape
        query_slots = torch.arange(first_query_slot, first_query_slot + tokens, device=query.device)
        real_query = (query_slots[None, :] >= row_start[:, None]).to(torch.float32)  # [B, T]
        query_abs = query.float().abs().view(batch, self.num_groups, heads // self.num_groups, tokens, width)
        query_mean = torch.einsum("bghtd,bt->bgd", query_abs, real_query)
        key_slots = torch.arange(self.length, device=query.device)
        real_key = (key_slots[None, :] >= row_start[:, None]).to(torch.float32)  # [B, L]
        key_mean = torch.einsum("bgld,bl->bgd", self.keys[:, :, : self.length].float().abs(), real_key)
        importance = query_mean * key_mean
        return importance.topk(self.num_label_channels, dim=-1).indices.sort(dim=-1).values

    def _write_labels(self, begin: int, end: int) -> None:
        channels = self.label_channels[:, :, None, :].expand(-1, -1, end - begin, -1)
        channel_keys = self.keys[:, :, begin:end].gather(-1, channels)
        codes, scale, zero = ops.quantize_labels(channel_keys, self.config.label_bits, backend=self.config.backend)
        self.label_codes[:, :, begin:end] = codes
        self.label_scale[:, :, begin:end] = scale
        self.label_zero[:, :, begin:end] = zero

    def rebuild_index(self, row_start: torch.Tensor) -> None:
        """Recompute every block summary from the stored keys (after crop or a change of padding)."""
        if self.length:
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

    def crop(self, length: int) -> None:
        """Keep the first `length` slots; the caller rebuilds block summaries with rebuild_index."""
        self.length = length

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (and reorder, or repeat) the batch rows `rows` [B'] int64 of every per-row tensor."""
        if not self.is_initialized:
            return
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
        """Bytes held by this layer's storage and index."""
        return sum(tensor.numel() * tensor.element_size() for tensor in self._storage().values())
