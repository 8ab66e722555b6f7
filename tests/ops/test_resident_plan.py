"""plan_resident_blocks (over sequences of plans), forget_resident_blocks, translate_positions and
sorted_with_successors: the Triton kernels against the PyTorch references."""

import pytest
import torch
from op_testing import DEVICE

from asynctls_hf.ops import (
    forget_resident_blocks,
    naive,
    plan_resident_blocks,
    sorted_with_successors,
    translate_positions,
)

pytest.importorskip("triton")
pytestmark = pytest.mark.usefixtures("poison_allocations")


def _wanted_sequence(batch, groups, picks, capacity, steps, generator):
    """Per step [B, NG, K] unique block ids below capacity, some -1, drawing often from the previous step's."""
    sequence, previous = [], None
    for _ in range(steps):
        ids = torch.stack([torch.randperm(capacity, generator=generator)[:picks] for _ in range(batch * groups)])
        ids = ids.view(batch, groups, picks)
        if previous is not None:  # keep about half of the previous step's blocks: hits
            keep = torch.rand(batch, groups, picks, generator=generator) < 0.5
            candidate = torch.where(keep, previous, ids)
            unique = torch.tensor([row[row >= 0].unique().numel() == int((row >= 0).sum())
                                   for row in candidate.view(-1, picks)])
            ids = torch.where(unique.view(batch, groups, 1), candidate, ids)
        ids = torch.where(torch.rand(batch, groups, picks, generator=generator) < 0.15, -1, ids)
        sequence.append(ids)
        previous = ids
    return sequence


@pytest.mark.parametrize(
    "batch, groups, picks, slots, capacity",
    [
        (1, 1, 4, 4, 9),  # every slot wanted when the plan is full
        (3, 2, 5, 7, 23),  # more slots than picks: empty slots and least-recently-wanted order matter
        (2, 3, 37, 37, 101),  # more slots than one chunk of the kernel
        (2, 1, 20, 45, 64),
        (1, 2, 300, 1100, 2500),  # token slots: more than one chunk of the circular kernel
    ],
)
@pytest.mark.parametrize("circular", [False, True], ids=["least-recently-wanted", "circular"])
def test_plans_and_state_equal_the_reference(batch, groups, picks, slots, capacity, circular):
    generator = torch.Generator().manual_seed(picks * 100 + slots)
    state = [
        torch.full((batch, groups, slots), -1, dtype=torch.long),
        torch.full((batch, groups, slots), -1, dtype=torch.long),
        torch.full((batch, groups, capacity + 1), -1, dtype=torch.long),
    ]
    state.append(torch.zeros(4, dtype=torch.long))  # the counters
    state.append(torch.randint(0, slots, (batch, groups), generator=generator) if circular else None)  # cursor
    kernel_state = [None if tensor is None else tensor.to(DEVICE, copy=True) for tensor in state]
    rows = (capacity + 3, slots + 2, 2)  # store blocks per (row, group); buffer slots per (row, group); reserved
    hit_total = 0
    for step, wanted in enumerate(_wanted_sequence(batch, groups, picks, capacity, 6, generator)):
        step_tensor = torch.tensor(step)
        expected = naive.plan_resident_blocks(wanted, *state[:3], step_tensor, state[3], *rows, state[4])
        output = plan_resident_blocks(wanted.to(DEVICE), *kernel_state[:3], step_tensor.to(DEVICE), kernel_state[3],
                                      *rows, cursor=kernel_state[4], backend="triton")
        names = ("hits", "copy_mask", "dest_slots", "source_rows", "target_rows")
        for name, got, want in zip(names, output, expected, strict=True):
            assert torch.equal(got.cpu(), want), (step, name)
        names = ("slot_block", "slot_last_wanted", "block_slot", "counters", "cursor")
        for name, got, want in zip(names, kernel_state, state, strict=True):
            assert (got is None and want is None) or torch.equal(got.cpu(), want), (step, name)
        hit_total += int(expected[0].sum())
    assert hit_total > 0  # the sequences exercise hits, not only misses

    first_block = torch.tensor(capacity // 2)
    naive.forget_resident_blocks(*state[:3], first_block)
    forget_resident_blocks(*kernel_state[:3], first_block.to(DEVICE), backend="triton")
    for got, want in zip(kernel_state[:3], state[:3], strict=True):
        assert torch.equal(got.cpu(), want)
    slot_block, _, block_slot = state[:3]
    assert (block_slot[:, :, capacity // 2 :] == -1).all() and not (slot_block >= capacity // 2).any()
    kept = slot_block >= 0
    assert kept.any() and torch.equal(block_slot.gather(2, slot_block.clamp(min=0))[kept], torch.nonzero(kept)[:, 2])


@pytest.mark.parametrize("tokens, fixed, block_size, reserved", [(7, 0, 1, 0), (37, 5, 16, 2), (300, 12, 64, 3)])
def test_translate_positions_equals_the_reference(tokens, fixed, block_size, reserved):
    batch, groups, capacity = 3, 2, 9
    generator = torch.Generator().manual_seed(tokens)
    block_slot = torch.randint(-1, 6, (batch, groups, capacity + 1), generator=generator)
    block_slot[:, :, capacity] = -1
    positions = torch.randint(-3, (capacity + 2) * block_size, (batch, groups, tokens), generator=generator)
    valid = torch.rand(batch, groups, tokens, generator=generator) < 0.8
    expected = naive.translate_positions(positions, valid, block_slot, block_size, reserved, fixed)
    output = translate_positions(positions.to(DEVICE), valid.to(DEVICE), block_slot.to(DEVICE), block_size, reserved,
                                 fixed, backend="triton")
    for got, want in zip(output, expected, strict=True):
        assert torch.equal(got.cpu(), want)
    assert expected[1][..., fixed:].any() and not expected[1][..., fixed:].all()  # resident and not, both met


@pytest.mark.parametrize(("shape", "successors"), [((1, 1, 1), 0), ((3, 2, 7), 0), ((2, 1, 944), 1),
                                                   ((1, 2, 300), 2), ((1, 1, 8193), 1), ((2, 3, 5), 3)])
def test_sorted_with_successors_equals_the_reference(shape, successors):
    """Odd row lengths (padded to a power of two inside the kernel; past SORT_LIMIT the reference runs), -1 entries
    (no id), successors cut at each row's limit and repeated where an id follows another."""
    generator = torch.Generator().manual_seed(shape[-1])
    ids = torch.stack([torch.randperm(2 * shape[-1], generator=generator)[: shape[-1]]
                       for _ in range(shape[0] * shape[1])]).view(shape)
    ids = torch.where(torch.rand(shape, generator=generator) < 0.2, -1, ids)
    limit = torch.randint(shape[-1], 2 * shape[-1] + 2, (shape[0],), generator=generator) if successors else None
    expected = naive.sorted_with_successors(ids, limit, successors)
    output = sorted_with_successors(ids.to(DEVICE), None if limit is None else limit.to(DEVICE), successors,
                                    backend="triton")
    assert torch.equal(output.cpu(), expected)
    if successors:
        kept = expected[expected >= 0]
        assert len(kept) > (ids >= 0).sum() and (expected == -1).sum() > (ids == -1).sum() * (1 + successors)


def test_sorted_with_successors_keeps_ids_up_to_the_int32_bound():
    """The kernel sorts as int32: ids up to 2**31 - 2 (past any context) come back whole, -1 first."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(2**31 - 1000, 2**31 - 1, (2, 3, 100), generator=generator)
    ids[..., ::7] = -1
    output = sorted_with_successors(ids.to(DEVICE), None, 0, backend="triton")
    assert torch.equal(output.cpu(), naive.sorted_with_successors(ids, None, 0))
