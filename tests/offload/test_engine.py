"""OffloadEngine: what attention reads through the slots equals a resident cache (lag 0) or the lagged selection
(lag 1), over a scripted decode with temporal locality, row selection and crop; statistics; the CUDA transport."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
import torch

from asynctls_hf.offload import CudaStreamTransport, HostBlockStore, OffloadEngine, SyncTransport, Transport

BATCH, BLOCK_SIZE, KEY_WIDTH, VALUE_WIDTH, TOP_BLOCKS = 3, 8, 12, 8, 5
LOCALITY = 0.7


def make_engine(
    num_groups: int, values_in_keys: bool, lag: int, *, num_slots: int = TOP_BLOCKS,
    transport: Transport | None = None, device: str = "cpu", window_tokens: int = 0,
) -> OffloadEngine:
    store = HostBlockStore(
        BATCH, num_groups, KEY_WIDTH, VALUE_WIDTH, BLOCK_SIZE, torch.float32,
        values_in_keys=values_in_keys, pin_memory=None if device == "cuda" else False,
    )
    return OffloadEngine(
        store, num_slots, transport or SyncTransport(), device, prefetch_lag=lag, window_tokens=window_tokens
    )


def next_wanted(rng: random.Random, previous: list[int], n_blocks: int) -> list[int]:
    """Blocks wanted by one (row, group): each previous one kept with probability LOCALITY, the rest new; a few
    -1 (block filtering found fewer candidate blocks), in no particular order."""
    kept = [block for block in previous if 0 <= block < n_blocks and rng.random() < LOCALITY]
    others = [block for block in range(n_blocks) if block not in kept]
    count = min(rng.choice([TOP_BLOCKS - 1, TOP_BLOCKS, TOP_BLOCKS]), n_blocks)
    chosen = kept[:count] + rng.sample(others, max(count - len(kept), 0))
    rng.shuffle(chosen)
    return chosen + [-1] * (TOP_BLOCKS - len(chosen))


def run_scripted_decode(
    engine: OffloadEngine,
    *,
    steps: int = 40,
    prompt: int = 45,
    seed: int = 0,
    select_rows_at: int | None = None,
    crop_at: int | None = None,
    before_read: Callable[[], None] | None = None,
) -> list[list]:
    """Prefill `prompt` tokens in two chunks, then decode `steps` tokens, reading through the slots every token of
    the blocks begin_step returns. Checks, once everything has run, that each step got the blocks of the lag's
    rule and read exactly the reference tokens. Returns the wanted blocks of each step."""
    store, device, lag = engine.store, engine.device, engine.prefetch_lag
    rng = random.Random(seed)
    generator = torch.Generator().manual_seed(seed)
    shape = (store.batch, store.num_groups, prompt + steps)
    keys = torch.randn(*shape, KEY_WIDTH, generator=generator)
    values = keys[..., :VALUE_WIDTH] if store.values_in_keys else torch.randn(*shape, VALUE_WIDTH, generator=generator)

    def append(begin: int, end: int) -> None:
        new_values = None if store.values_in_keys else values[:, :, begin:end].to(device)
        engine.append(keys[:, :, begin:end].to(device), new_values)

    append(0, prompt // 3)
    append(prompt // 3, prompt)
    length = prompt
    wanted = [[[] for _ in range(store.num_groups)] for _ in range(store.batch)]
    previous = None
    records, wanted_per_step = [], []
    for step in range(steps):
        if step == select_rows_at:
            rows = [2, 0, 0]
            engine.select_rows(torch.tensor(rows))
            keys, values = keys[rows], values[rows]
            wanted = [wanted[row] for row in rows]
            previous = None if previous is None else [previous[row] for row in rows]
        if step == crop_at:
            length -= 7
            engine.crop(length)
            fresh = torch.randn(*keys.shape[:3], KEY_WIDTH, generator=generator)
            keys = torch.cat([keys[:, :, :length], fresh[:, :, length:]], dim=2)
            values = keys[..., :VALUE_WIDTH] if store.values_in_keys else values
            previous = None
        append(length, length + 1)
        length += 1
        n_blocks = -(-length // BLOCK_SIZE)
        wanted = [[next_wanted(rng, blocks, n_blocks) for blocks in row] for row in wanted]
        if lag == 0 or previous is None:
            expected_blocks = wanted
        else:  # the previous step's blocks, except those this step's token was appended to
            appended_block = (length - 1) // BLOCK_SIZE
            expected_blocks = [
                [[block if block < appended_block else -1 for block in blocks] for blocks in row] for row in previous
            ]
        previous = wanted
        wanted_per_step.append(wanted)

        blocks = engine.begin_step(torch.tensor(wanted, device=device))
        positions = (blocks[..., None] * BLOCK_SIZE + torch.arange(BLOCK_SIZE, device=device)).flatten(2)
        in_context = (blocks >= 0).repeat_interleave(BLOCK_SIZE, dim=2) & (positions < length)
        positions = torch.where(in_context, positions, -1)
        buffer_positions, resident = engine.translate(positions)
        if before_read is not None:
            before_read()
        read_keys = engine.key_buffer.gather(2, buffer_positions[..., None].expand(-1, -1, -1, KEY_WIDTH))
        read_values = engine.value_buffer.gather(2, buffer_positions[..., None].expand(-1, -1, -1, VALUE_WIDTH))
        engine.end_step()
        records.append((expected_blocks, blocks, positions, resident, read_keys, read_values, keys, values))

    for expected_blocks, blocks, positions, resident, read_keys, read_values, step_keys, step_values in records:
        assert blocks.tolist() == expected_blocks
        positions, resident = positions.cpu(), resident.cpu()
        assert torch.equal(resident, positions >= 0), "every token of the returned blocks is resident"
        index = positions.clamp(min=0)[..., None]
        expected_keys = step_keys.gather(2, index.expand(-1, -1, -1, KEY_WIDTH))
        expected_values = step_values.gather(2, index.expand(-1, -1, -1, VALUE_WIDTH))
        assert torch.equal(read_keys.cpu()[resident], expected_keys[resident])
        assert torch.equal(read_values.cpu()[resident], expected_values[resident])
    return wanted_per_step


def assert_stats_add_up(engine: OffloadEngine, wanted_per_step: list[list]) -> None:
    stats = engine.stats()
    wanted = sum(block >= 0 for step in wanted_per_step for row in step for group in row for block in group)
    assert stats["steps"] == len(wanted_per_step)
    assert stats["wanted_blocks"] == wanted
    assert stats["hit_blocks"] + stats["copied_blocks"] == wanted
    assert stats["copied_bytes"] == stats["copied_blocks"] * engine.store.block_bytes
    assert 0.5 < stats["hit_rate"] < 1, "temporal locality gives hits, and new blocks give misses"


@pytest.mark.parametrize("lag", [0, 1])
@pytest.mark.parametrize("num_groups", [1, 2])
@pytest.mark.parametrize("values_in_keys", [False, True])
@pytest.mark.parametrize("window_tokens", [0, 2 * BLOCK_SIZE])
def test_reads_through_the_slots_equal_the_resident_cache(lag, num_groups, values_in_keys, window_tokens):
    engine = make_engine(num_groups, values_in_keys, lag, window_tokens=window_tokens)
    engine.key_buffer[:, :, :window_tokens] = 7.0
    if not values_in_keys:
        engine.value_buffer[:, :, :window_tokens] = 7.0
    wanted_per_step = run_scripted_decode(engine)
    assert_stats_add_up(engine, wanted_per_step)
    assert engine.stats()["wait_seconds"] == 0
    assert engine.key_buffer[:, :, :window_tokens].eq(7.0).all(), "block copies leave the window region alone"
    assert engine.value_buffer[:, :, :window_tokens].eq(7.0).all()


def test_window_tokens_must_be_whole_blocks():
    with pytest.raises(ValueError, match="window_tokens"):
        make_engine(1, False, 0, window_tokens=BLOCK_SIZE + 1)


@pytest.mark.parametrize("lag", [0, 1])
def test_select_rows_and_crop_mid_decode_stay_consistent(lag):
    engine = make_engine(2, False, lag, num_slots=TOP_BLOCKS + 2)
    wanted_per_step = run_scripted_decode(engine, steps=50, select_rows_at=17, crop_at=31)
    assert_stats_add_up(engine, wanted_per_step)


@pytest.mark.parametrize("lag", [0, 1])
def test_stats_count_hits_and_copies(lag):
    """Wanted [0, 1], [1, 2], [1, 2], [3, 0] in 4 slots: hits 0, 1, 2 and 1 (block 0 is still resident at the
    last step), whether each step is planned before its selection (lag 0) or after it (lag 1)."""
    expected_hits = 4
    engine = make_engine(1, False, lag, num_slots=4)
    engine.append(torch.randn(BATCH, 1, 4 * BLOCK_SIZE, KEY_WIDTH), torch.randn(BATCH, 1, 4 * BLOCK_SIZE, VALUE_WIDTH))
    for wanted in ([0, 1], [1, 2], [1, 2], [3, 0]):
        engine.begin_step(torch.tensor(wanted).expand(BATCH, 1, -1))
        engine.end_step()
    stats = engine.stats()
    assert stats["steps"] == 4
    assert stats["wanted_blocks"] == 8 * BATCH
    assert stats["hit_blocks"] == expected_hits * BATCH
    assert stats["copied_blocks"] == (8 - expected_hits) * BATCH
    assert stats["copied_bytes"] == (8 - expected_hits) * BATCH * BLOCK_SIZE * (KEY_WIDTH + VALUE_WIDTH) * 4
    assert stats["hit_rate"] == expected_hits / 8
    engine.reset()
    assert engine.stats()["wanted_blocks"] == 0 and engine.store.length == 0


def test_prefetch_lag_is_checked():
    with pytest.raises(ValueError, match="prefetch_lag must be 0"):
        make_engine(1, False, 2)


class DelayedCopies(CudaStreamTransport):
    """Puts a random delay on the copy stream before each copy, so that any missing event shows up as a race."""

    def __init__(self, rng: random.Random):
        super().__init__()
        self.rng = rng

    def copy_blocks(self, *args, **kwargs):
        with torch.cuda.stream(self.stream):
            torch.cuda._sleep(self.rng.randint(0, 2_000_000))
        return super().copy_blocks(*args, **kwargs)


@pytest.mark.gpu
@pytest.mark.parametrize("lag", [0, 1])
@pytest.mark.parametrize("values_in_keys", [False, True])
def test_cuda_stream_transport_under_random_delays_reads_what_sync_reads(lag, values_in_keys):
    """Random delays on the copy stream (copies land late) and on the compute stream before each read (reads
    happen late, while the next copies are already issued): both must still read exactly the reference tokens,
    as SyncTransport does."""
    rng = random.Random(1)
    engine = make_engine(2, values_in_keys, lag, transport=DelayedCopies(rng), device="cuda")
    wanted_per_step = run_scripted_decode(
        engine, select_rows_at=17, crop_at=31, before_read=lambda: torch.cuda._sleep(rng.randint(0, 2_000_000))
    )
    assert engine.store.keys.is_pinned()
    assert_stats_add_up(engine, wanted_per_step)
    waited = engine.stats()["wait_seconds"]
    assert waited > 0 if lag else waited == 0  # exact mode copies on the compute stream itself

    synchronous = make_engine(2, values_in_keys, lag, transport=SyncTransport(), device="cuda")
    assert run_scripted_decode(synchronous, select_rows_at=17, crop_at=31) == wanted_per_step
    assert synchronous.stats() | {"wait_seconds": 0} == engine.stats() | {"wait_seconds": 0}


@pytest.mark.parametrize("lag", [0, 1])
@pytest.mark.parametrize("values_in_keys", [False, True])
def test_token_granularity_fetches_the_selected_tokens_it_lacks(values_in_keys, lag):
    """A scripted decode with granularity "token": each step selects random tokens (most of them selected before,
    as temporal locality makes them); what attention reads through the buffer equals the tokens; the window's
    fixed entries pass through; the counts are of tokens; rows reordered and a crop keep it consistent. Lag 0
    makes every selected token resident. Lag 1 (and its first step, and the first after a crop, exact) makes
    resident the tokens selected at the previous step, never one not selected before, and copies the rest for
    the next step."""
    window, slots, picks = 2 * BLOCK_SIZE, 24, 10
    store = HostBlockStore(BATCH, 2, KEY_WIDTH, VALUE_WIDTH, BLOCK_SIZE, torch.float32,
                           values_in_keys=values_in_keys, pin_memory=False)
    engine = OffloadEngine(store, slots, SyncTransport(), "cpu", prefetch_lag=lag, window_tokens=window,
                           granularity="token")
    assert engine.key_buffer.shape[2] == window + slots
    assert engine.resident.cursor is not None, "thousands of token slots: the circular policy, not a full ranking"
    generator = torch.Generator().manual_seed(0)
    keys = torch.randn(BATCH, 2, 120, KEY_WIDTH, generator=generator)
    values = keys[..., :VALUE_WIDTH] if values_in_keys else torch.randn(BATCH, 2, 120, VALUE_WIDTH, generator=generator)
    engine.append(keys[:, :, :60], None if values_in_keys else values[:, :, :60])
    length, selected, wanted_total = 60, None, 0
    seen = torch.zeros(BATCH, 2, 120, dtype=torch.bool)  # (row, group, token) selected at some step
    previous = torch.zeros_like(seen)  # selected (and valid) at the previous step
    lagged_misses = 0  # selected tokens a lag-1 step attended without (copied for the next step)
    for step in range(30):
        if step == 12:
            rows = torch.tensor([1, 1, 0])
            engine.select_rows(rows)
            keys, values, selected = keys[rows], values[rows], selected[rows]
            seen, previous = seen[rows], previous[rows]
        if step == 20:
            length -= 5
            engine.crop(length)
            keys = torch.cat([keys[:, :, :length], torch.randn_like(keys[:, :, length:])], dim=2)
            values = keys[..., :VALUE_WIDTH] if values_in_keys else values
            seen[..., length:] = False  # the crop forgets the tokens it drops; the others stay resident
        engine.append(keys[:, :, length : length + 1], None if values_in_keys else values[:, :, length : length + 1])
        length += 1
        fresh = torch.stack([torch.randperm(length - 8, generator=generator)[:picks] for _ in range(BATCH * 2)])
        fresh = fresh.view(BATCH, 2, picks)
        if selected is not None:  # keep most of the previous step's picks (unique per row and group)
            keep = (torch.rand(BATCH, 2, picks, generator=generator) < 0.7) & (selected < length - 8)
            candidates = torch.where(keep, selected, -1)
            for row in range(BATCH):
                for group in range(2):
                    kept = [p for p in candidates[row, group].tolist() if p >= 0]
                    new = [p for p in fresh[row, group].tolist() if p not in kept]
                    fresh[row, group] = torch.tensor((kept + new)[:picks])
        selected = fresh
        valid = torch.rand(BATCH, 2, picks, generator=generator) < 0.9
        wanted_total += int(valid.sum())
        fixed = torch.tensor([0, 3, window - 1]).expand(BATCH, 2, -1)
        positions = torch.cat([fixed, selected], dim=2)
        all_valid = torch.cat([torch.ones_like(fixed, dtype=torch.bool), valid], dim=2)
        buffer_positions, resident = engine.fetch_tokens(positions, all_valid, fixed=3)
        assert torch.equal(buffer_positions[..., :3], fixed) and resident[..., :3].all()
        held = resident[..., 3:]
        if lag == 0 or step in (0, 20):
            assert torch.equal(held, valid), f"step {step}: an exact step holds every selected token"
        else:
            assert not (held & ~valid).any()
            assert torch.equal(held & previous.gather(2, selected), valid & previous.gather(2, selected))
            assert not (held & ~seen.gather(2, selected)).any(), f"step {step}: a token never selected is resident"
            lagged_misses += int((valid & ~held).sum())
        index = buffer_positions[..., 3:, None]
        read_keys = engine.key_buffer.gather(2, index.expand(-1, -1, -1, KEY_WIDTH))
        read_values = engine.value_buffer.gather(2, index.expand(-1, -1, -1, VALUE_WIDTH))
        expected_keys = keys.gather(2, selected[..., None].expand(-1, -1, -1, KEY_WIDTH))
        expected_values = values.gather(2, selected[..., None].expand(-1, -1, -1, VALUE_WIDTH))
        assert torch.equal(read_keys[held], expected_keys[held]), f"step {step}"
        assert torch.equal(read_values[held], expected_values[held]), f"step {step}"
        engine.end_step()
        previous = torch.zeros_like(seen).scatter_(2, selected, valid)
        seen |= previous
    assert (lagged_misses > 0) == (lag == 1)
    stats = engine.stats()
    assert stats["wanted_blocks"] == wanted_total and stats["hit_blocks"] + stats["copied_blocks"] == wanted_total
    assert 0.3 < stats["hit_rate"] < 1
    token_bytes = (KEY_WIDTH + (0 if values_in_keys else VALUE_WIDTH)) * 4
    assert stats["copied_bytes"] == stats["copied_blocks"] * token_bytes


def test_each_granularity_keeps_to_its_protocol():
    store = HostBlockStore(1, 1, KEY_WIDTH, VALUE_WIDTH, BLOCK_SIZE, torch.float32, pin_memory=False)
    with pytest.raises(ValueError, match="granularity must be"):
        OffloadEngine(store, 8, SyncTransport(), "cpu", prefetch_lag=0, granularity="page")
    by_token = OffloadEngine(store, 8, SyncTransport(), "cpu", prefetch_lag=0, granularity="token")
    with pytest.raises(RuntimeError, match="uses fetch_tokens"):
        by_token.begin_step(torch.zeros(1, 1, 2, dtype=torch.long))
    by_block = make_engine(1, False, 0)
    with pytest.raises(RuntimeError, match="uses begin_step"):
        by_block.fetch_tokens(torch.zeros(1, 1, 2, dtype=torch.long), torch.ones(1, 1, 2, dtype=torch.bool))


@pytest.mark.parametrize("values_in_keys", [False, True])
def test_lag_one_also_fetches_the_tokens_after_each_selected_one(values_in_keys):
    """With prefetch_successors=2 a lag-1 step finds resident the two tokens after each token an earlier step
    selected (below that step's successor_limit), from the first (exact) step on, and reads them right; tokens
    at or past the limit, and tokens never selected nor following a selected one, are not fetched."""
    store = HostBlockStore(1, 1, KEY_WIDTH, VALUE_WIDTH, BLOCK_SIZE, torch.float32, values_in_keys=values_in_keys,
                           pin_memory=False)
    engine = OffloadEngine(store, 40, SyncTransport(), "cpu", prefetch_lag=1, granularity="token",
                           prefetch_successors=2)
    generator = torch.Generator().manual_seed(0)
    keys = torch.randn(1, 1, 60, KEY_WIDTH, generator=generator)
    values = keys[..., :VALUE_WIDTH] if values_in_keys else torch.randn(1, 1, 60, VALUE_WIDTH, generator=generator)

    def step(length: int, picks: list[int], limit: int) -> list[bool]:
        engine.append(keys[:, :, length - 1 : length], None if values_in_keys else values[:, :, length - 1 : length])
        positions = torch.tensor([[picks]])
        buffer_positions, resident = engine.fetch_tokens(
            positions, torch.ones_like(positions, dtype=torch.bool), successor_limit=torch.tensor([limit])
        )
        index = buffer_positions[..., None]
        held = resident[0, 0]
        read_keys = engine.key_buffer.gather(2, index.expand(-1, -1, -1, KEY_WIDTH))[0, 0]
        read_values = engine.value_buffer.gather(2, index.expand(-1, -1, -1, VALUE_WIDTH))[0, 0]
        assert torch.equal(read_keys[held], keys[0, 0, positions[0, 0][held]])
        assert torch.equal(read_values[held], values[0, 0, positions[0, 0][held]])
        engine.end_step()
        return held.tolist()

    engine.append(keys[:, :, :48], None if values_in_keys else values[:, :, :48])
    assert step(49, [5, 20, 30, 40], limit=42) == [True] * 4, "the first step is exact"
    # Resident now: 5 6 7, 20 21 22, 30 31 32, 40 41 (42 is at the limit).
    assert step(50, [6, 7, 8, 21, 41, 42, 12], limit=45) == [True, True, False, True, True, False, False]
    # Planned for the next step: the picks and the two after each, below 45: 6-10, 12-14, 21-23, 41-44.
    assert step(51, [9, 10, 13, 14, 42, 43, 44, 45, 23], limit=60) == [True] * 7 + [False, True]
    # Each plan counts its ids once: 11 (5-7, 20-22, 30-32, 40-41), 15, then 17 (9-16, 23-25, 42-47).
    assert engine.stats()["wanted_blocks"] == 11 + 15 + 17
