"""page_locked_empty: exact-size host tensors, page-locked for CUDA, released with their last view."""

import pytest
import torch

from asynctls_hf.offload import pinned
from asynctls_hf.offload.pinned import page_locked_empty

MIB = 2**20


def resident_bytes() -> int:
    """This process's resident set size (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


@pytest.mark.parametrize("shape", [(3, 5, 7), (1,), (0, 4)])
def test_shape_dtype_and_contents(shape):
    tensor = page_locked_empty(shape, torch.bfloat16, register=False)
    assert tensor.shape == shape and tensor.dtype == torch.bfloat16 and tensor.is_contiguous()
    values = torch.randn(shape).to(torch.bfloat16)
    tensor.copy_(values)
    assert torch.equal(tensor, values)


def test_memory_is_the_exact_size_and_is_returned_with_the_last_view():
    before = resident_bytes()
    tensor = page_locked_empty((96 * MIB + 8,), torch.uint8, register=False)
    tensor.fill_(1)
    grown = resident_bytes() - before
    assert 96 * MIB <= grown < 100 * MIB  # a power-of-two rounding allocator would touch 128 MiB once filled
    view = tensor[MIB:]
    del tensor
    assert resident_bytes() - before >= 96 * MIB  # the view keeps the mapping
    assert int(view[0]) == 1
    del view
    assert resident_bytes() - before < 4 * MIB


@pytest.mark.gpu
def test_registered_memory_is_pinned_and_copies_asynchronously():
    host = page_locked_empty((1000, 37), torch.float32)
    assert host.is_pinned()
    values = torch.randn(1000, 37)
    host.copy_(values)
    device = torch.empty((1000, 37), device="cuda")
    device.copy_(host, non_blocking=True)
    host_back = page_locked_empty((1000, 37), torch.float32)
    host_back.copy_(device * 2, non_blocking=True)
    torch.cuda.synchronize()
    assert torch.equal(host_back, values * 2)
    del host, host_back  # unregistered after a device synchronization, then unmapped
    again = page_locked_empty((1000, 37), torch.float32)
    assert again.is_pinned()


@pytest.mark.gpu
def test_memory_freed_during_graph_capture_is_released_after_it():
    """Freed inside a capture, the mapping is set aside rather than synchronizing (which would end the capture)
    and stays registered until the next page_locked_empty, which releases it: fresh memory then page-locks."""
    host = page_locked_empty((1000, 37), torch.float32)
    counter = torch.zeros(4, device="cuda")
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        del host
        counter.add_(1)
    assert len(pinned._deferred) == 1
    graph.replay()
    torch.cuda.synchronize()
    assert counter.tolist() == [1.0] * 4
    again = page_locked_empty((1000, 37), torch.float32)
    assert not pinned._deferred and again.is_pinned()
