"""update_block_summaries: the Triton kernel against the PyTorch reference."""

import pytest
import torch
from op_testing import DEVICE, left_padded_row_start

from asynctls_hf.ops import append_token, naive, update_block_summaries

pytest.importorskip("triton")
pytestmark = pytest.mark.usefixtures("poison_allocations")


def _poisoned_summaries(batch, groups, capacity, block_size, key_width, dtype):
    shape = (batch, groups, capacity // block_size, key_width)
    return torch.full(shape, float("nan"), dtype=dtype, device=DEVICE), torch.full(
        shape, float("nan"), dtype=dtype, device=DEVICE
    )


def _check_appends(keys, row_start, block_size, appends):
    """Apply each (slot_begin, slot_end) append with both backends; every summary must agree bit for bit (blocks
    never written stay NaN in both)."""
    batch, groups, capacity, key_width = keys.shape
    block_max, block_min = _poisoned_summaries(batch, groups, capacity, block_size, key_width, keys.dtype)
    reference_max, reference_min = block_max.clone(), block_min.clone()
    for slot_begin, slot_end in appends:
        update_block_summaries(
            keys, block_max, block_min, row_start, slot_begin, slot_end, block_size, backend="triton"
        )
        naive.update_block_summaries(keys, reference_max, reference_min, row_start, slot_begin, slot_end, block_size)
        torch.testing.assert_close(block_max, reference_max, rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(block_min, reference_min, rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize(
    "dtype, key_width, context, longest_pad",
    [
        (torch.float32, 32, 63, 40),  # rows whose first two blocks hold no real slot
        (torch.bfloat16, 64, 111, 17),
        (torch.float16, 128, 63, 5),
        (torch.bfloat16, 576, 111, 20),  # MLA latent + rope width
    ],
)
def test_prefill_then_decode_appends(dtype, key_width, context, longest_pad):
    block_size, batch, groups, capacity = 16, 3, 2, 128
    keys = torch.randn(batch, groups, capacity, key_width, dtype=dtype, device=DEVICE)
    row_start = left_padded_row_start(batch, longest_pad)
    # The prefill, then decode steps: one inside a block, one starting a new block.
    appends = [(0, context), (context, context + 1), (context + 1, context + 2)]
    _check_appends(keys, row_start, block_size, appends)


def test_append_starting_mid_block():
    keys = torch.randn(2, 2, 64, 32, device=DEVICE)
    _check_appends(keys, torch.tensor([0, 9], device=DEVICE), 16, [(5, 37), (37, 38)])


@pytest.mark.gpu
def test_long_context_on_gpu():
    batch, groups, key_width, block_size, context = 4, 8, 128, 64, 96_000
    capacity = 96 * 1024
    keys = torch.randn(batch, groups, capacity, key_width, dtype=torch.bfloat16, device=DEVICE)
    row_start = torch.tensor([0, 100, 1000, 5000], device=DEVICE)
    _check_appends(keys, row_start, block_size, [(0, context), (context, context + 1)])


@pytest.mark.parametrize(
    "dtype, key_width, value_width, groups",
    [(torch.float32, 40, 32, 2), (torch.bfloat16, 576, None, 1), (torch.float16, 24, 24, 3)],
)
@pytest.mark.parametrize("write_kv", [True, False], ids=["resident", "summaries-only"])
def test_append_token_equals_reference_and_a_rebuild(dtype, key_width, value_width, groups, write_kv):
    """Decode tokens appended one at a time at a device-held slot (across block starts, into rows still padded):
    the kernel equals the reference bit for bit, and the summaries equal update_block_summaries over the keys."""
    batch, block_size, prompt, steps = 3, 8, 13, 21
    capacity = -(-(prompt + steps) // block_size) * block_size
    row_start = torch.tensor([0, 5, prompt + 3], device=DEVICE)  # the last row is padding until slot 16
    keys = torch.zeros(batch, groups, capacity, key_width, dtype=dtype, device=DEVICE)
    values = None if value_width is None else torch.zeros(batch, groups, capacity, value_width, dtype=dtype,
                                                          device=DEVICE)
    keys[:, :, :prompt] = torch.randn(batch, groups, prompt, key_width, device=DEVICE).to(dtype)
    block_max, block_min = _poisoned_summaries(batch, groups, capacity, block_size, key_width, dtype)
    naive.update_block_summaries(keys, block_max, block_min, row_start, 0, prompt, block_size)
    state = {"triton": (keys.clone(), None if values is None else values.clone(), block_max.clone(),
                        block_min.clone()),
             "torch": (keys.clone(), None if values is None else values.clone(), block_max.clone(),
                       block_min.clone())}
    for slot in range(prompt, prompt + steps):
        key = torch.randn(batch, groups, 1, key_width, device=DEVICE).to(dtype)
        value = None if value_width is None else torch.randn(batch, groups, 1, value_width, device=DEVICE).to(dtype)
        keys[:, :, slot : slot + 1] = key
        for backend, (state_keys, state_values, state_max, state_min) in state.items():
            append_token(key, value, state_keys if write_kv else None, state_values if write_kv else None, state_max,
                         state_min, torch.tensor(slot, device=DEVICE), row_start, block_size, backend=backend)
        for triton_tensor, torch_tensor in zip(state["triton"], state["torch"], strict=True):
            if triton_tensor is not None:
                torch.testing.assert_close(triton_tensor, torch_tensor, rtol=0, atol=0, equal_nan=True)
    rebuilt_max, rebuilt_min = block_max.clone(), block_min.clone()
    naive.update_block_summaries(keys, rebuilt_max, rebuilt_min, row_start, 0, prompt + steps, block_size)
    torch.testing.assert_close(state["triton"][2], rebuilt_max, rtol=0, atol=0, equal_nan=True)
    torch.testing.assert_close(state["triton"][3], rebuilt_min, rtol=0, atol=0, equal_nan=True)
    if write_kv:
        torch.testing.assert_close(state["triton"][0], keys, rtol=0, atol=0)


@pytest.mark.parametrize("value_width", [24, None], ids=["gqa", "values-in-keys"])
def test_append_token_writes_an_offloaded_layers_store_and_ring(value_width):
    """An offloaded layer's decode token goes to its host store at the slot (pinned memory when there is a GPU,
    written by the kernel through its mapped address) and to the ring of recent tokens in the device window."""
    batch, groups, key_width, block_size, capacity, sinks, ring = 2, 3, 40, 8, 48, 4, 16
    pinned = DEVICE.type == "cuda"
    row_start = torch.tensor([0, 3], device=DEVICE)

    def targets():
        store = [torch.zeros(batch, groups, capacity, width, pin_memory=pinned) for width in (key_width, value_width)
                 if width is not None]
        window = [torch.zeros(batch, groups, sinks + ring, width, device=DEVICE) for width in (key_width, value_width)
                  if width is not None]
        summaries = _poisoned_summaries(batch, groups, capacity, block_size, key_width, torch.float32)
        return store, window, summaries

    state = {"triton": targets(), "torch": targets()}
    history = []
    for slot in range(37):  # the ring wraps twice
        key = torch.randn(batch, groups, 1, key_width, device=DEVICE)
        value = None if value_width is None else torch.randn(batch, groups, 1, value_width, device=DEVICE)
        history.append(key)
        for backend, (store, window, summaries) in state.items():
            append_token(key, value, store[0], store[1] if value_width else None, *summaries,
                         torch.tensor(slot, device=DEVICE), row_start, block_size, window[0],
                         window[1] if value_width else None, sinks, ring, backend=backend)
    for triton_tensors, torch_tensors in zip(state["triton"], state["torch"], strict=True):
        for triton_tensor, torch_tensor in zip(triton_tensors, torch_tensors, strict=True):
            torch.testing.assert_close(triton_tensor.cpu(), torch_tensor.cpu(), rtol=0, atol=0, equal_nan=True)
    store, window, _ = state["triton"]
    assert torch.equal(store[0][:, :, :37].to(DEVICE), torch.cat(history, dim=2))
    for slot in range(37 - ring, 37):
        assert torch.equal(window[0][:, :, sinks + slot % ring], history[slot][:, :, 0])
    assert not window[0][:, :, :sinks].any()  # the sinks' positions are not the ring's
