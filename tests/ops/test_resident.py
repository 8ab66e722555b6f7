"""plan_resident_blocks: the Triton kernel against the PyTorch reference, over sequences of plans."""

import pytest
import torch
from op_testing import DEVICE

from asynctls_hf.ops import naive, plan_resident_blocks

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
    ],
)
def test_plans_and_state_equal_the_reference(batch, groups, picks, slots, capacity):
    generator = torch.Generator().manual_seed(picks * 100 + slots)
    state = [
        torch.full((batch, groups, slots), -1, dtype=torch.long),
        torch.full((batch, groups, slots), -1, dtype=torch.long),
        torch.full((batch, groups, capacity + 1), -1, dtype=torch.long),
    ]
    kernel_state = [tensor.to(DEVICE, copy=True) for tensor in state]
    hit_total = 0
    for step, wanted in enumerate(_wanted_sequence(batch, groups, picks, capacity, 6, generator)):
        step_tensor = torch.tensor(step)
        expected = naive.plan_resident_blocks(wanted, *state, step_tensor)
        output = plan_resident_blocks(wanted.to(DEVICE), *kernel_state, step_tensor.to(DEVICE), backend="triton")
        for name, got, want in zip(("hits", "copy_mask", "dest_slots"), output, expected, strict=True):
            assert torch.equal(got.cpu(), want), (step, name)
        for name, got, want in zip(("slot_block", "slot_last_wanted", "block_slot"), kernel_state, state, strict=True):
            assert torch.equal(got.cpu(), want), (step, name)
        hit_total += int(expected[0].sum())
    assert hit_total > 0  # the sequences exercise hits, not only misses
