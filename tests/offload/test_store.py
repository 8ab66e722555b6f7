"""HostBlockStore against a plain [B, NG, S, D] reference, at sizes that are not multiples of the block."""

from __future__ import annotations

import pytest
import torch

from asynctls_hf.offload import HostBlockStore

BATCH, BLOCK_SIZE, KEY_WIDTH, VALUE_WIDTH = 3, 16, 12, 8


def make_store(
    num_groups: int, values_in_keys: bool, capacity_tokens: int = 0, pin_memory: bool = False
) -> HostBlockStore:
    return HostBlockStore(
        BATCH, num_groups, KEY_WIDTH, VALUE_WIDTH, BLOCK_SIZE, torch.float32,
        values_in_keys=values_in_keys, capacity_tokens=capacity_tokens, pin_memory=pin_memory,
    )


def reference_tokens(num_groups: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    keys = torch.randn(BATCH, num_groups, length, KEY_WIDTH, generator=generator)
    values = torch.randn(BATCH, num_groups, length, VALUE_WIDTH, generator=generator)
    return keys, values


def append_in_chunks(store: HostBlockStore, keys: torch.Tensor, values: torch.Tensor, chunks: list[int]) -> None:
    begin = store.length
    for size in chunks:
        chunk = slice(begin, begin + size)
        store.append(keys[:, :, chunk], None if store.values_in_keys else values[:, :, chunk])
        begin += size


def assert_store_holds(store: HostBlockStore, keys: torch.Tensor, values: torch.Tensor) -> None:
    length = keys.shape[2]
    assert store.length == length
    assert store.n_blocks == -(-length // BLOCK_SIZE)
    torch.testing.assert_close(store.token_keys[:, :, :length], keys, rtol=0, atol=0)
    expected_values = keys[..., :VALUE_WIDTH] if store.values_in_keys else values
    torch.testing.assert_close(store.token_values[:, :, :length], expected_values, rtol=0, atol=0)


@pytest.mark.parametrize("num_groups", [1, 2])
@pytest.mark.parametrize("values_in_keys", [False, True])
def test_append_in_chunks_of_any_length_grows_and_keeps_tokens(num_groups, values_in_keys):
    keys, values = reference_tokens(num_groups, 157)
    store = make_store(num_groups, values_in_keys)
    append_in_chunks(store, keys, values, [37, 1, 1, 50, 3] + [1] * 65)
    assert store.capacity_blocks >= store.n_blocks == 10
    assert store.keys.shape == (BATCH, num_groups, store.capacity_blocks, BLOCK_SIZE, KEY_WIDTH)
    assert_store_holds(store, keys, values)


@pytest.mark.parametrize("num_groups", [1, 2])
@pytest.mark.parametrize("values_in_keys", [False, True])
def test_select_rows_then_append(num_groups, values_in_keys):
    keys, values = reference_tokens(num_groups, 90, seed=2)
    store = make_store(num_groups, values_in_keys)
    append_in_chunks(store, keys, values, [41])
    rows = torch.tensor([2, 0, 0])
    store.select_rows(rows)
    keys, values = keys[rows], values[rows]
    append_in_chunks(store, keys, values, [1] * 49)
    assert_store_holds(store, keys, values)


@pytest.mark.parametrize("values_in_keys", [False, True])
def test_crop_then_append_overwrites(values_in_keys):
    keys, values = reference_tokens(2, 70, seed=3)
    store = make_store(2, values_in_keys)
    append_in_chunks(store, keys, values, [70])
    store.crop(45)
    fresh_keys, fresh_values = reference_tokens(2, 70, seed=4)
    keys = torch.cat([keys[:, :, :45], fresh_keys[:, :, 45:]], dim=2)
    values = torch.cat([values[:, :, :45], fresh_values[:, :, 45:]], dim=2)
    append_in_chunks(store, keys, values, [3, 22])
    assert_store_holds(store, keys, values)
    with pytest.raises(ValueError, match="cannot crop to 71"):
        store.crop(71)


@pytest.mark.parametrize("values_in_keys", [False, True])
def test_each_tokens_key_and_value_sit_side_by_side(values_in_keys):
    """The layout the transport's copies rely on: one row of entries per token, its key then its value (the key
    alone when the value is inside it), blocks of block_size rows; keys and values are views of it."""
    keys, values = reference_tokens(2, 37)
    store = make_store(2, values_in_keys)
    append_in_chunks(store, keys, values, [20, 17])
    expected = keys if values_in_keys else torch.cat((keys, values), dim=-1)
    assert store.entries.is_contiguous() and store.entries.shape[-1] == store.entry_width == expected.shape[-1]
    torch.testing.assert_close(store.token_entries[:, :, :37], expected, rtol=0, atol=0)
    for view in (store.keys, store.values):
        assert view.untyped_storage().data_ptr() == store.entries.untyped_storage().data_ptr()
    assert store.memory_bytes() == store.entries.numel() * 4


def test_block_bytes_and_pinning():
    assert make_store(2, False).block_bytes == BLOCK_SIZE * (KEY_WIDTH + VALUE_WIDTH) * 4
    assert make_store(1, True).block_bytes == BLOCK_SIZE * KEY_WIDTH * 4
    default = HostBlockStore(1, 1, 4, 4, BLOCK_SIZE, torch.float32, capacity_tokens=BLOCK_SIZE)
    assert default.keys.is_pinned() == torch.cuda.is_available()
    assert not make_store(1, False, capacity_tokens=BLOCK_SIZE).keys.is_pinned()


@pytest.mark.parametrize("values_in_keys", [False, True])
def test_read_tokens_returns_what_was_appended(values_in_keys):
    keys, values = reference_tokens(2, 40)
    store = make_store(2, values_in_keys, capacity_tokens=40)
    append_in_chunks(store, keys, values, [40])
    got_keys, got_values = store.read_tokens(5, 33, torch.device("cpu"))
    assert torch.equal(got_keys, keys[:, :, 5:33])
    assert torch.equal(got_values, (keys[..., :VALUE_WIDTH] if values_in_keys else values)[:, :, 5:33])


@pytest.mark.gpu
@pytest.mark.parametrize("values_in_keys", [False, True])
def test_kernel_writes_and_reads_of_pinned_storage_from_the_gpu(values_in_keys):
    keys, values = reference_tokens(2, 40)
    store = make_store(2, values_in_keys, capacity_tokens=8, pin_memory=True)
    for begin, end in ((0, 17), (17, 18), (18, 40)):
        store.append(keys[:, :, begin:end].cuda(), None if values_in_keys else values[:, :, begin:end].cuda())
    got_keys, got_values = store.read_tokens(3, 39, torch.device("cuda"))
    assert torch.equal(got_keys.cpu(), keys[:, :, 3:39])
    assert torch.equal(got_values.cpu(), (keys[..., :VALUE_WIDTH] if values_in_keys else values)[:, :, 3:39])
