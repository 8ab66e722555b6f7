"""copy_rows: the Triton kernel against the reference at odd sizes; on a GPU, straight from and to pinned memory."""

from __future__ import annotations

import pytest
import torch
from op_testing import DEVICE

from asynctls_hf import ops


def rows_case(source_rows: int, target_rows: int, width: int, count: int, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    source = torch.randn(source_rows, width, generator=generator).to(torch.bfloat16)
    target = torch.randn(target_rows, width, generator=generator).to(torch.bfloat16)
    picked_source = torch.randint(0, source_rows, (count,), generator=generator)
    picked_target = torch.randperm(target_rows, generator=generator)[:count]  # distinct targets
    valid = torch.rand(count, generator=generator) < 0.7
    return source, target, picked_source, picked_target, valid


@pytest.mark.parametrize(("width", "count", "programs"), [(1, 5, None), (37, 9, None), (1500, 13, None),
                                                        (1500, 13, 3), (2049, 7, 1), (37, 9, 100)])
def test_kernel_matches_reference(width, count, programs):
    """Uncapped (a program per piece of a row) and with the grid capped below and above the pieces' count."""
    source, target, source_rows, target_rows, valid = (
        tensor.to(DEVICE) for tensor in rows_case(23, 17, width, count)
    )
    expected = target.clone()
    ops.copy_rows(source, expected, source_rows, target_rows, valid, backend="torch")
    assert not torch.equal(expected, target), "some rows are copied"
    ops.copy_rows(source, target, source_rows, target_rows, valid, programs=programs, backend="triton")
    assert torch.equal(target, expected)


@pytest.mark.gpu
@pytest.mark.parametrize("direction", ["host to device", "device to host"])
def test_kernel_reads_and_writes_pinned_memory(direction):
    source, target, source_rows, target_rows, valid = rows_case(300, 200, 8192 + 7, 120)
    if direction == "host to device":
        source, target = source.pin_memory(), target.cuda()
    else:
        source, target = source.cuda(), target.pin_memory()
    expected = target.cpu().clone()
    ops.copy_rows(source.cpu(), expected, source_rows, target_rows, valid, backend="torch")
    ops.copy_rows(source, target, source_rows.cuda(), target_rows.cuda(), valid.cuda(), programs=16, backend="triton")
    torch.cuda.synchronize()
    assert torch.equal(target.cpu(), expected)
