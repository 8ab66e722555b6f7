"""update_block_summaries: the Triton kernel against the PyTorch reference."""

import pytest
import torch
from op_testing import DEVICE, left_padded_row_start

from asynctls_hf.ops import naive, update_block_summaries

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
