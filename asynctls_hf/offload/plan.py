"""Placement of the KV cache for offload=False / True / "auto": on the GPU, or its K/V in pinned host memory,
decided and checked before anything is allocated.

`plan_placement` is a pure function of the bytes each placement needs (the cache computes them from its layers'
storage layouts) and of the free memory. Kept back for what the cache does not account for (activations,
logits, the allocator's fragmentation, the process itself) when "auto" decides: on the GPU
max(DEVICE_RESERVE_FRACTION of the free memory, DEVICE_RESERVE_MIN_BYTES); on the host HOST_RESERVE_FRACTION of
the available memory, always.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

GIB = 2**30
DEVICE_RESERVE_FRACTION = 0.10
DEVICE_RESERVE_MIN_BYTES = 2 * GIB
HOST_RESERVE_FRACTION = 0.10


class CacheMemoryError(MemoryError):
    """The KV cache does not fit in GPU and/or pinned host memory under the requested offload setting (raised
    before prefill, before anything is allocated)."""


def free_device_memory(device: torch.device) -> int | None:
    """Bytes a new allocation can take on `device`: the driver's free memory plus what PyTorch's caching
    allocator holds unused; None where no check applies (CPU)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)


def host_available_memory(meminfo_path: str = "/proc/meminfo") -> int:
    """Bytes of host memory available for new allocations (MemAvailable in /proc/meminfo)."""
    with open(meminfo_path) as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                kib = line.split()[1]
                return int(kib) * 1024
    raise OSError(f"no MemAvailable line in {meminfo_path}")


def device_usable(free: int) -> int:
    """What "auto" lets the resident cache take of `free` GPU bytes: the rest is kept for activations."""
    return free - max(int(DEVICE_RESERVE_FRACTION * free), DEVICE_RESERVE_MIN_BYTES)


def host_usable(free: int) -> int:
    return free - int(HOST_RESERVE_FRACTION * free)


@dataclass(frozen=True)
class Placement:
    """Where the cache goes. offload: whether the full K/V lives in pinned host memory. device_bytes: what the
    placement allocates on each device; host_bytes: in pinned host memory (0 when resident)."""

    offload: bool
    device_bytes: dict[torch.device, int]
    host_bytes: int


def plan_placement(
    resident_bytes: dict[torch.device, int],
    offloaded_bytes: dict[torch.device, int],
    offloaded_host_bytes: int,
    offload: bool | str,
    *,
    what: str,
    device_free: dict[torch.device, int | None],
    host_free: int,
) -> Placement:
    """Decide resident or offloaded and check that it fits.

    resident_bytes / offloaded_bytes: per device, what a resident / offloaded cache allocates there, with the
    prefill's working memory;
    offloaded_host_bytes: the pinned host memory an offloaded cache takes; device_free: free bytes per device
    (None: no check, a CPU device); `what` names the cache in messages ("the KV cache for 4 sequence(s) of up to
    N tokens"). offload="auto" offloads only when the resident cache would leave a device less than its reserve.
    Raises CacheMemoryError saying what is needed, what is free and which setting to change.
    """
    resident_fits_with_reserve = all(
        free is None or resident_bytes[device] <= device_usable(free) for device, free in device_free.items()
    )
    if offload is False or (offload == "auto" and resident_fits_with_reserve):
        for device, needed in resident_bytes.items():
            free = device_free[device]
            if free is not None and needed > free:
                raise CacheMemoryError(
                    f"{what} needs {_gib(needed)} on {device} (K/V, its index and the prefill's working memory), but "
                    f"only {_gib(free)} is free: generate with a smaller batch, a shorter prompt, fewer "
                    "max_new_tokens or a smaller prefill_chunk_size, use offload=True or "
                    "offload='auto' (the full K/V then goes to pinned host memory), or place layers on more devices "
                    "(device_map)"
                )
        return Placement(False, dict(resident_bytes), 0)
    for device, needed in offloaded_bytes.items():
        free = device_free[device]
        if free is not None and needed > free:
            raise CacheMemoryError(
                f"{what}, offloaded (offload={offload!r}), still needs {_gib(needed)} on {device} for labels, block "
                "summaries, the local window, the top_blocks resident slots and the prefill's working memory, but "
                f"only {_gib(free)} is free: use a smaller top_blocks, a smaller batch, fewer max_new_tokens or a "
                "smaller prefill_chunk_size"
            )
    if offloaded_host_bytes > host_usable(host_free):
        resident_fits = all(
            free is None or resident_bytes[device] <= free for device, free in device_free.items()
        )
        raise CacheMemoryError(
            f"{what}, offloaded (offload={offload!r}), needs {_gib(offloaded_host_bytes)} of pinned host memory, "
            f"where {_gib(host_free)} is available and {_gib(host_usable(host_free))} usable: use a smaller batch "
            "or fewer max_new_tokens" + (", or offload=False (it fits on the GPU)" if resident_fits else "")
        )
    return Placement(True, dict(offloaded_bytes), offloaded_host_bytes)


def _gib(size: int) -> str:
    return f"{size / GIB:.2f} GiB"
