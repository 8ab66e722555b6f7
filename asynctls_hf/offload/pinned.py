"""Page-locked host tensors of exactly the size asked for.

`torch.empty(..., pin_memory=True)` goes through PyTorch's caching host allocator, which rounds every request up
to the next power of two: a 1.5 GiB layer store pins 2 GiB, a 3 GiB one 4 GiB, so a cache that the memory plan
found room for could take a third more host memory than planned and be killed for it, and freed stores stay
cached out of MemAvailable's sight. Here the memory is an anonymous mapping of the exact size, registered with
CUDA (cudaHostRegister) while a tensor uses it and unregistered, then unmapped, when the last tensor viewing it is
freed.
A mapping freed while a CUDA graph is being captured (the garbage collector may free one at any allocation) cannot
wait for the devices then: a synchronize would end the capture, and unmapping memory CUDA still has registered
would leave the range registered, so that page-locking fresh memory there fails. It is set aside and released by
`release_deferred()`, which page_locked_empty and the decode-graph capture call once capture is over.
"""

from __future__ import annotations

import ctypes
import mmap
import sys

import torch

CUDA_HOST_REGISTER_DEFAULT = 0  # with unified virtual addressing: mapped (kernels read it) and portable (every GPU)


class PageLockedMapping(mmap.mmap):
    """An anonymous mapping that is page-locked for CUDA while it lives.

    Created by `page_locked_empty`; tensors made from it with torch.frombuffer hold it, so it is unregistered
    and unmapped only after the last of them is freed. Before unregistering it waits for every device, since
    kernels may still be reading it.
    """

    registered_address: int | None = None

    def register(self) -> None:
        anchor = ctypes.c_char.from_buffer(self)
        address = ctypes.addressof(anchor)
        del anchor
        error = torch.cuda.cudart().cudaHostRegister(address, len(self), CUDA_HOST_REGISTER_DEFAULT)
        if error != 0:
            raise MemoryError(
                f"could not page-lock {len(self) / 2**30:.2f} GiB of host memory for CUDA (cudaHostRegister error "
                f"{int(error)}): free host memory, or use a smaller batch or context"
            )
        self.registered_address = address

    def release(self) -> None:
        """Waits for every device, then unregisters the memory (it is unmapped when the mapping is freed)."""
        for device in range(torch.cuda.device_count()):
            torch.cuda.synchronize(device)
        torch.cuda.cudart().cudaHostUnregister(self.registered_address)
        self.registered_address = None

    def __del__(self) -> None:
        if self.registered_address is None or sys.is_finalizing():  # at exit the driver frees it
            return
        if torch.cuda.is_current_stream_capturing():
            _deferred.append(self)  # kept mapped and registered until release_deferred()
            return
        self.release()


_deferred: list[PageLockedMapping] = []  # freed during a CUDA graph capture, still registered and mapped


def release_deferred() -> None:
    """Unregisters and unmaps the page-locked memory freed during a CUDA graph capture. Call it outside capture."""
    while _deferred:
        mapping = _deferred.pop()
        mapping.release()
        mapping.close()


def page_locked_empty(shape: tuple[int, ...], dtype: torch.dtype, *, register: bool = True) -> torch.Tensor:
    """An uninitialised host tensor of `shape`, page-locked for CUDA when `register` (pageable otherwise: tests
    on machines without a GPU), using exactly its own size in bytes (rounded up to whole pages)."""
    numel = 1
    for size in shape:
        numel *= size
    nbytes = max(numel * dtype.itemsize, 1)
    mapping = PageLockedMapping(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # as malloc's own
    if register:
        release_deferred()
        mapping.register()
    return torch.frombuffer(mapping, dtype=torch.uint8)[: numel * dtype.itemsize].view(dtype).view(shape)
