"""Memory planning for offload=False / True / "auto": where the cache goes, decided before anything is allocated.

Pure functions of the layer geometry, the sizes and the free memory (passed in; `available_memory` reads it).
Kept back for what the cache does not account for (activations, logits, the allocator's fragmentation, the
process itself): on the GPU max(DEVICE_RESERVE_FRACTION of the free memory, DEVICE_RESERVE_MIN_BYTES); on the
host HOST_RESERVE_FRACTION of the available memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GIB = 2**30
DEVICE_RESERVE_FRACTION = 0.10
DEVICE_RESERVE_MIN_BYTES = 2 * GIB
HOST_RESERVE_FRACTION = 0.10
# Each label keeps a float32 scale and a float32 zero point beside its codes.
LABEL_QUANTIZATION_BYTES = 8


class OffloadMemoryError(MemoryError):
    """The cache does not fit in GPU and/or pinned host memory under the requested offload setting."""


def label_bytes_per_token(label_channels: int, label_bits: int, dtype_bytes: int) -> int:
    """Bytes of one token's label in one group: its codes (bits per channel, 16 meaning the key's own dtype)
    plus the scale and zero point."""
    code_bytes = label_channels * dtype_bytes if label_bits == 16 else label_channels * label_bits // 8
    return code_bytes + LABEL_QUANTIZATION_BYTES


@dataclass(frozen=True)
class LayerFootprint:
    """What one decoder layer stores: NG groups of keys Dk wide and values Dv wide in a dtype of dtype_bytes
    bytes (values_in_keys: MLA, the values are a view of the latent, counted once), and a label of
    label_bytes bytes per token and group."""

    num_groups: int
    key_width: int
    value_width: int
    dtype_bytes: int
    label_bytes: int
    values_in_keys: bool = False

    @property
    def kv_bytes_per_token(self) -> int:
        widths = self.key_width + (0 if self.values_in_keys else self.value_width)
        return self.num_groups * widths * self.dtype_bytes

    @property
    def index_bytes_per_token(self) -> int:
        return self.num_groups * self.label_bytes

    @property
    def summary_bytes_per_block(self) -> int:
        """The channel-wise min and max of a block's keys, per group."""
        return 2 * self.num_groups * self.key_width * self.dtype_bytes


@dataclass(frozen=True)
class MemoryPlan:
    """Where the cache goes. offload: whether the full K/V lives in pinned host memory. device_bytes and
    host_bytes: what the plan allocates on each side (all layers); resident_device_bytes: what keeping
    everything on the GPU would take; device_usable and host_usable: the free memory minus the reserves."""

    offload: bool
    device_bytes: int
    host_bytes: int
    resident_device_bytes: int
    device_usable: int
    host_usable: int


def resident_device_bytes(
    layer: LayerFootprint, num_layers: int, batch: int, max_length: int, block_size: int
) -> int:
    """Bytes on the GPU of a cache that keeps everything there: K/V, labels and block summaries."""
    blocks = -(-max_length // block_size)
    per_row = blocks * block_size * (layer.kv_bytes_per_token + layer.index_bytes_per_token)
    per_row += blocks * layer.summary_bytes_per_block
    return num_layers * batch * per_row


def offloaded_bytes(
    layer: LayerFootprint,
    num_layers: int,
    batch: int,
    max_length: int,
    block_size: int,
    top_blocks: int,
    window_tokens: int,
) -> tuple[int, int]:
    """(GPU bytes, pinned host bytes) of an offloaded cache.

    GPU: labels and block summaries of every token, top_blocks block slots and `window_tokens` tokens of K/V
    (the sinks and the local window) per row and layer, and the device side of the uploads (two layers' worth
    of a full step's copies). Host: the full K/V of every layer plus two pinned staging buffers of a full step.
    """
    blocks = -(-max_length // block_size)
    kv = layer.kv_bytes_per_token
    index_per_row = blocks * block_size * layer.index_bytes_per_token + blocks * layer.summary_bytes_per_block
    resident_per_row = (top_blocks * block_size + window_tokens) * kv
    full_step_copy = batch * top_blocks * block_size * kv
    device = num_layers * batch * (index_per_row + resident_per_row) + 2 * full_step_copy
    host = num_layers * batch * blocks * block_size * kv + 2 * full_step_copy
    return device, host


def plan_memory(
    layer: LayerFootprint,
    num_layers: int,
    batch: int,
    max_length: int,
    *,
    block_size: int,
    top_blocks: int,
    window_tokens: int,
    offload: bool | str,
    device_free: int,
    host_free: int,
) -> MemoryPlan:
    """Decide resident or offloaded for offload=False / True / "auto" ("auto" offloads only when the resident
    cache does not fit); raise OffloadMemoryError saying what is needed, what is free and what to change when
    the chosen placement does not fit."""
    device_usable = device_free - max(int(DEVICE_RESERVE_FRACTION * device_free), DEVICE_RESERVE_MIN_BYTES)
    host_usable = host_free - int(HOST_RESERVE_FRACTION * host_free)
    resident = resident_device_bytes(layer, num_layers, batch, max_length, block_size)
    offload_device, offload_host = offloaded_bytes(
        layer, num_layers, batch, max_length, block_size, top_blocks, window_tokens
    )
    if offload is False or (offload == "auto" and resident <= device_usable):
        plan = MemoryPlan(False, resident, 0, resident, device_usable, host_usable)
    else:
        plan = MemoryPlan(True, offload_device, offload_host, resident, device_usable, host_usable)
    if plan.device_bytes <= device_usable and plan.host_bytes <= host_usable:
        return plan
    raise OffloadMemoryError(_does_not_fit_message(plan, offload, batch, max_length, device_free, host_free))


def _does_not_fit_message(
    plan: MemoryPlan, offload: bool | str, batch: int, max_length: int, device_free: int, host_free: int
) -> str:
    what = f"the KV cache for {batch} sequence(s) of up to {max_length} tokens"
    device_side = (
        f"{_gib(plan.device_bytes)} on the GPU, where {_gib(device_free)} is free and "
        f"{_gib(plan.device_usable)} usable (the rest is kept for activations)"
    )
    if not plan.offload:
        return (
            f"{what} needs {device_side}, with offload={offload!r}: use offload=True or offload='auto' "
            "(the full K/V then goes to pinned host memory), a smaller batch, or fewer max_new_tokens"
        )
    if plan.device_bytes > plan.device_usable:
        return (
            f"{what}, offloaded (offload={offload!r}), still needs {device_side} for labels, block summaries and "
            "the top_blocks resident slots: use a smaller top_blocks, a smaller batch, or fewer max_new_tokens"
        )
    resident_fits = plan.resident_device_bytes <= plan.device_usable
    return (
        f"{what}, offloaded (offload={offload!r}), needs {_gib(plan.host_bytes)} of pinned host memory, where "
        f"{_gib(host_free)} is available and {_gib(plan.host_usable)} usable: use a smaller batch or fewer "
        "max_new_tokens" + (", or offload=False (it fits on the GPU)" if resident_fits else "")
    )


def _gib(size: int) -> str:
    return f"{size / GIB:.1f} GiB"


def host_available_memory(meminfo_path: str = "/proc/meminfo") -> int:
    """Bytes of host memory available for new allocations (MemAvailable in /proc/meminfo)."""
    with open(meminfo_path) as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                kib = line.split()[1]
                return int(kib) * 1024
    raise OSError(f"no MemAvailable line in {meminfo_path}")


def available_memory(device: torch.device) -> tuple[int, int]:
    """(free GPU bytes on `device`, available host bytes). A CPU `device` has no GPU side: its free memory is
    the host's, which the cache would then share."""
    from asynctls_hf.cache.cache import free_device_memory  # imported on call: the cache package may import this module

    host = host_available_memory()
    device_free = free_device_memory(device)
    return (host if device_free is None else device_free), host
