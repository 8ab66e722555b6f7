"""ResidentSet: hits, misses, victim choice (least recently wanted, never a wanted block), translation."""

from __future__ import annotations

import random

import pytest
import torch

from asynctls_hf.offload import ResidentSet


def slots_of(resident: ResidentSet, blocks: torch.Tensor) -> torch.Tensor:
    """The slot holding each block id of blocks [B, NG, K] (-1: not resident), read through translate."""
    positions, held = resident.translate(blocks, 1)
    return torch.where(held, positions - resident.reserved_slots, -1)


def plan_one(resident: ResidentSet, wanted: list[int]) -> tuple[list[bool], list[int]]:
    """Plan a single (row, group) step; returns (hits, dest_slots) as lists."""
    plan = resident.plan(torch.tensor(wanted)[None, None, :], row_tokens=4)
    return plan.hits[0, 0].tolist(), plan.dest_slots[0, 0].tolist()


def test_first_misses_fill_empty_slots_in_order():
    resident = ResidentSet(1, 1, num_slots=4, block_capacity=8, device="cpu")
    hits, dest = plan_one(resident, [5, -1, 2])
    assert hits == [False, False, False]
    assert dest == [0, -1, 1]
    assert resident.slot_block[0, 0].tolist() == [5, 2, -1, -1]


def test_least_recently_wanted_is_evicted_and_wanted_blocks_stay():
    resident = ResidentSet(1, 1, num_slots=4, block_capacity=8, device="cpu")
    plan_one(resident, [0, 1])  # step 0: slots 0, 1
    plan_one(resident, [2, 3])  # step 1: slots 2, 3
    hits, dest = plan_one(resident, [0, 4])  # step 2: 0 hits; slot 1 (block 1, wanted at step 0) is the oldest
    assert hits == [True, False] and dest == [-1, 1]
    hits, dest = plan_one(resident, [5, 2])  # step 3: 2 hits; slots 0 and 1 were wanted at step 2, slot 3 at step 1
    assert hits == [False, True] and dest == [3, -1]
    assert resident.slot_block[0, 0].tolist() == [0, 4, 2, 5]
    assert slots_of(resident, torch.tensor([[[1, 3, 5, 0, -1, 100]]])).tolist() == [[[-1, -1, 3, 0, -1, -1]]]


def test_circular_policy_takes_the_next_slots_not_wanted_now():
    """First in, first out from a cursor: the slots in circular order, skipping those wanted now (whatever their
    age), the cursor after the last one taken; reordered rows take their cursors with them; reset rewinds."""
    resident = ResidentSet(1, 1, num_slots=4, block_capacity=16, device="cpu", circular=True)
    assert plan_one(resident, [5, 6]) == ([False, False], [0, 1])
    assert resident.cursor.tolist() == [[2]]
    assert plan_one(resident, [5, 7, 8]) == ([True, False, False], [-1, 2, 3])  # slots 2, 3; the cursor wraps to 0
    assert resident.cursor.tolist() == [[0]]
    assert plan_one(resident, [9, 5]) == ([False, True], [1, -1])  # slot 0 holds 5, wanted now: skipped
    assert resident.slot_block[0, 0].tolist() == [5, 9, 7, 8] and resident.cursor.tolist() == [[2]]
    assert plan_one(resident, [1, 2, 3]) == ([False, False, False], [2, 3, 0])  # the oldest, even block 5
    assert resident.cursor.tolist() == [[1]]
    resident.select_rows(torch.tensor([0, 0]))
    assert resident.cursor.tolist() == [[1], [1]]
    resident.reset()
    assert resident.cursor.tolist() == [[0], [0]] and (resident.slot_block == -1).all()


def test_more_wanted_blocks_than_slots_is_refused():
    resident = ResidentSet(1, 1, num_slots=2, block_capacity=8, device="cpu")
    with pytest.raises(ValueError, match="3 wanted blocks per group do not fit in 2 slots"):
        resident.plan(torch.tensor([[[0, 1, 2]]]), row_tokens=4)


def reference_plan(slot_block: list[int], last_wanted: list[int], wanted: list[int], step: int):
    """The policy written plainly for one (row, group): misses go to slots not wanted this step, least recently
    wanted first (never wanted: -1), ties to the lower slot. Updates slot_block and last_wanted in place."""
    wanted_slots = {slot_block.index(block) for block in wanted if block >= 0 and block in slot_block}
    victims = iter(sorted((slot for slot in range(len(slot_block)) if slot not in wanted_slots),
                          key=lambda slot: (last_wanted[slot], slot)))
    hits, dest = [], []
    for block in wanted:
        hit = block >= 0 and block in slot_block
        hits.append(hit)
        dest.append(next(victims) if block >= 0 and not hit else -1)
        if dest[-1] >= 0:
            slot_block[dest[-1]] = block
    for block in wanted:
        if block >= 0:
            last_wanted[slot_block.index(block)] = step
    return hits, dest


def random_wanted(rng: random.Random, n_blocks: int, k: int) -> list[int]:
    chosen = rng.sample(range(n_blocks), rng.randint(0, k))
    return chosen + [-1] * (k - len(chosen))


@pytest.mark.parametrize("num_slots", [6, 9])
def test_vectorized_plan_matches_the_plain_policy_per_row_and_group(num_slots):
    batch, groups, wanted_per_step, n_blocks = 3, 2, 6, 14
    rng = random.Random(0)
    resident = ResidentSet(batch, groups, num_slots, block_capacity=4, device="cpu", reserved_slots=2)
    resident.ensure_block_capacity(n_blocks)
    counted = torch.zeros(4, dtype=torch.long)
    reference = [[([-1] * num_slots, [-1] * num_slots) for _ in range(groups)] for _ in range(batch)]
    wanted = [[random_wanted(rng, n_blocks, wanted_per_step) for _ in range(groups)] for _ in range(batch)]
    for step in range(40):
        # temporal locality: keep each block of the previous step with probability 0.7
        wanted = [[[b for b in w if b >= 0 and rng.random() < 0.7] for w in row] for row in wanted]
        wanted = [[_fill(rng, w, n_blocks, wanted_per_step) for w in row] for row in wanted]
        plan = resident.plan(torch.tensor(wanted), row_tokens=4)
        counted += torch.tensor([1, int((plan.wanted >= 0).sum()), int(plan.hits.sum()), int(plan.copy_mask.sum())])
        for row in range(batch):
            for group in range(groups):
                slot_block, last_wanted = reference[row][group]
                hits, dest = reference_plan(slot_block, last_wanted, wanted[row][group], step)
                assert plan.hits[row, group].tolist() == hits
                assert plan.dest_slots[row, group].tolist() == dest
                assert resident.slot_block[row, group].tolist() == slot_block
        assert_copy_rows(plan, resident)
        assert_maps_are_inverse(resident)
        wanted_tensor = torch.tensor(wanted)
        slots = slots_of(resident, wanted_tensor)
        assert torch.equal(slots >= 0, wanted_tensor >= 0), "every wanted block is resident after the plan"
    assert torch.equal(resident.counters, counted)


def assert_copy_rows(plan, resident: ResidentSet) -> None:
    """Each miss's source row is its block in its (row, group)'s store rows, its target row its slot in the buffer
    rows; picks not copied point at row 0."""
    batch, groups, picks = plan.wanted.shape
    row_group = torch.arange(batch * groups).view(batch, groups, 1)
    target_per_row = resident.reserved_slots + resident.num_slots
    expected_source = torch.where(plan.copy_mask, row_group * resident.block_capacity + plan.wanted, 0)
    expected_target = torch.where(plan.copy_mask, row_group * target_per_row + resident.reserved_slots
                                  + plan.dest_slots, 0)
    assert torch.equal(plan.source_rows, expected_source.flatten())
    assert torch.equal(plan.target_rows, expected_target.flatten())


def _fill(rng: random.Random, kept: list[int], n_blocks: int, k: int) -> list[int]:
    others = [block for block in range(n_blocks) if block not in kept]
    chosen = kept + rng.sample(others, rng.randint(0, k - len(kept)))
    rng.shuffle(chosen)
    return chosen + [-1] * (k - len(chosen))


def assert_maps_are_inverse(resident: ResidentSet) -> None:
    batch, groups, _ = resident.slot_block.shape
    for row in range(batch):
        for group in range(groups):
            slot_block = resident.slot_block[row, group].tolist()
            block_slot = resident.block_slot[row, group, : resident.block_capacity].tolist()
            assert resident.block_slot[row, group, resident.block_capacity] == -1
            for slot, block in enumerate(slot_block):
                if block >= 0:
                    assert block_slot[block] == slot
            for block, slot in enumerate(block_slot):
                if slot >= 0:
                    assert slot_block[slot] == block


def test_translate_positions_to_slot_buffer():
    block_size = 4
    resident = ResidentSet(2, 1, num_slots=3, block_capacity=8, device="cpu")
    resident.plan(torch.tensor([[[6, 2]], [[1, -1]]]), row_tokens=4)  # row 0: block 6 -> slot 0, block 2 -> slot 1
    positions = torch.tensor([[[25, 9, 3, -1]], [[7, 4, 40, 8]]])
    buffer_positions, resident_mask = resident.translate(positions, block_size)
    assert resident_mask.tolist() == [[[True, True, False, False]], [[True, True, False, False]]]
    assert buffer_positions.tolist() == [[[1, 5, 0, 0]], [[3, 0, 0, 0]]]


def test_invalidate_select_rows_and_reset():
    resident = ResidentSet(2, 2, num_slots=3, block_capacity=8, device="cpu")
    resident.plan(torch.tensor([[[0, 3], [5, 1]], [[2, 4], [6, -1]]]), row_tokens=4)
    resident.invalidate_from(3)
    assert resident.slot_block.tolist() == [[[0, -1, -1], [-1, 1, -1]], [[2, -1, -1], [-1, -1, -1]]]
    assert_maps_are_inverse(resident)
    plan = resident.plan(torch.tensor([[[0, 3], [1, 5]], [[2, 4], [6, -1]]]), row_tokens=4)
    assert plan.hits.tolist() == [[[True, False], [True, False]], [[True, False], [False, False]]]
    resident.select_rows(torch.tensor([1, 1]))
    assert resident.slot_block[0].tolist() == resident.slot_block[1].tolist()
    assert slots_of(resident, torch.tensor([[[2]], [[2]]])).tolist() == [[[0]], [[0]]]
    assert_maps_are_inverse(resident)
    resident.reset()
    assert (resident.slot_block == -1).all() and (resident.block_slot == -1).all() and int(resident.step) == 0

