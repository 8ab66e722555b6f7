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
                                                        (1500, 13, 3), (2049, 7, 1), (37, 9, 100), (37, 101, 3),
                                                        (128, 77, None)])
def test_kernel_matches_reference(width, count, programs):
    """Uncapped (a program per tile of rows) and with the grid capped below and above the tiles' count; lists of
    several tiles of rows."""
    source, target, source_rows, target_rows, valid = (
        tensor.to(DEVICE) for tensor in rows_case(113, 211, width, count)
    )
    expected = target.clone()
    ops.copy_rows(source, expected, source_rows, target_rows, valid, backend="torch")
    assert not torch.equal(expected, target), "some rows are copied"
    ops.copy_rows(source, target, source_rows, target_rows, valid, programs=programs, backend="triton")
    assert torch.equal(target, expected)


@pytest.mark.parametrize(("width", "count", "programs"), [(37, 101, None), (1500, 13, 2)])
def test_kernel_copies_a_second_pair_at_the_same_rows(width, count, programs):
    """Keys and values in one launch: each pair equals its own reference copy."""
    source, target, source_rows, target_rows, valid = (
        tensor.to(DEVICE) for tensor in rows_case(113, 211, width, count)
    )
    second_source, second_target = (tensor.to(DEVICE) for tensor in rows_case(113, 211, width, count, seed=1)[:2])
    expected, second_expected = target.clone(), second_target.clone()
    ops.copy_rows(source, expected, source_rows, target_rows, valid, backend="torch")
    ops.copy_rows(second_source, second_expected, source_rows, target_rows, valid, backend="torch")
    ops.copy_rows(source, target, source_rows, target_rows, valid, programs=programs,
                  second=(second_source, second_target), backend="triton")
    assert torch.equal(target, expected) and torch.equal(second_target, second_expected)
    assert not torch.equal(second_expected, rows_case(113, 211, width, count, seed=1)[1].to(DEVICE))


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


@pytest.mark.gpu
def test_kernel_copies_single_tokens_and_their_values_from_pinned_memory():
    """The decode step's shape: 256-byte rows (bf16, width 128), keys and values in one launch, most rows not
    copied."""
    source, target, source_rows, target_rows, valid = rows_case(5000, 3000, 128, 2500)
    second_source, second_target = rows_case(5000, 3000, 128, 2500, seed=1)[:2]
    valid &= torch.rand(2500, generator=torch.Generator().manual_seed(2)) < 0.2
    expected, second_expected = target.clone(), second_target.clone()
    ops.copy_rows(source, expected, source_rows, target_rows, valid, second=(second_source, second_expected),
                  backend="torch")
    target, second_target = target.cuda(), second_target.cuda()
    ops.copy_rows(source.pin_memory(), target, source_rows.cuda(), target_rows.cuda(), valid.cuda(),
                  second=(second_source.pin_memory(), second_target), backend="triton")
    torch.cuda.synchronize()
    assert torch.equal(target.cpu(), expected) and torch.equal(second_target.cpu(), second_expected)
