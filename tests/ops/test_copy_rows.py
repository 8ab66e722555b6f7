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


def split_case(entries: int, first: int, second: int, count: int, seed: int = 0):
    """rows_case for a source of `entries` entries of first + second columns per row, and its two targets."""
    source, _, source_rows, target_rows, valid = rows_case(113, 211, entries * (first + second), count, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    targets = (torch.randn(211, entries * width, generator=generator).to(torch.bfloat16) for width in (first, second))
    return source, *targets, source_rows, target_rows, valid


@pytest.mark.parametrize(("entries", "first", "second", "count", "programs"),
                         [(1, 128, 128, 101, None), (1, 37, 5, 9, 3), (3, 37, 21, 13, None), (64, 8, 8, 7, 2)])
def test_kernel_splits_each_entry_between_two_targets(entries, first, second, count, programs):
    """Keys and values side by side in the source (a token, or a block of `entries` tokens, per row), each entry
    split between the key and value targets: equal to the reference, which equals copying each half on its own."""
    source, target, second_target, source_rows, target_rows, valid = (
        tensor.to(DEVICE) for tensor in split_case(entries, first, second, count)
    )
    expected, second_expected = target.clone(), second_target.clone()
    ops.copy_rows(source, expected, source_rows, target_rows, valid, second_target=second_expected, entries=entries,
                  backend="torch")
    halves = source.view(len(source), entries, first + second)
    for half, before, after in ((halves[..., :first], target, expected), (halves[..., first:], second_target,
                                                                          second_expected)):
        by_halves = before.clone()
        ops.copy_rows(half.reshape(len(source), -1).contiguous(), by_halves, source_rows, target_rows, valid,
                      backend="torch")
        assert torch.equal(after, by_halves) and not torch.equal(after, before)
    ops.copy_rows(source, target, source_rows, target_rows, valid, programs=programs, second_target=second_target,
                  entries=entries, backend="triton")
    assert torch.equal(target, expected) and torch.equal(second_target, second_expected)


def test_split_widths_must_add_up():
    source, target, second_target, source_rows, target_rows, valid = split_case(2, 8, 4, 5)
    with pytest.raises(ValueError, match="do not add up"):
        ops.copy_rows(source, target, source_rows, target_rows, valid, second_target=second_target[:, :4].contiguous(),
                      entries=2, backend="triton")


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
def test_kernel_copies_single_tokens_keys_and_values_from_pinned_memory():
    """The decode step's shape: a token's key and value side by side in the store (bf16, 128 + 128), split into the
    key and value buffers, most rows not copied."""
    source, target, source_rows, target_rows, valid = rows_case(5000, 3000, 256, 2500)
    target, second_target = target[:, :128].contiguous(), target[:, 128:].contiguous()
    valid &= torch.rand(2500, generator=torch.Generator().manual_seed(2)) < 0.2
    expected, second_expected = target.clone(), second_target.clone()
    ops.copy_rows(source, expected, source_rows, target_rows, valid, second_target=second_expected, backend="torch")
    target, second_target = target.cuda(), second_target.cuda()
    ops.copy_rows(source.pin_memory(), target, source_rows.cuda(), target_rows.cuda(), valid.cuda(),
                  second_target=second_target, backend="triton")
    torch.cuda.synchronize()
    assert torch.equal(target.cpu(), expected) and torch.equal(second_target.cpu(), second_expected)
