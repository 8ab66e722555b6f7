"""block_scores: the Triton kernel against the PyTorch reference."""

import pytest
import torch
from op_testing import DEVICE, assert_scores_match

from asynctls_hf.ops import block_scores, naive

pytest.importorskip("triton")
pytestmark = pytest.mark.usefixtures("poison_allocations")


def _check(batch, groups, heads, key_width, n_blocks, dtype):
    query = torch.randn(batch, groups, heads, key_width, dtype=dtype, device=DEVICE)
    # Summaries are a prefix of a larger storage, as the cache passes them.
    storage_max = torch.randn(batch, groups, n_blocks + 3, key_width, dtype=dtype, device=DEVICE)
    storage_min = storage_max - torch.rand_like(storage_max)
    block_max, block_min = storage_max[:, :, :n_blocks], storage_min[:, :, :n_blocks]
    block_valid = torch.rand(batch, n_blocks, device=DEVICE) > 0.3
    block_valid[:, 0] = True
    scores = block_scores(query, block_max, block_min, block_valid, backend="triton")
    assert_scores_match(scores, naive.block_scores(query, block_max, block_min, block_valid))


@pytest.mark.parametrize(
    "dtype, heads, key_width, n_blocks",
    [
        (torch.float32, 1, 32, 4),  # 63 slots in blocks of 16
        (torch.bfloat16, 4, 64, 7),  # 111 slots
        (torch.float16, 8, 128, 7),
        (torch.bfloat16, 20, 576, 4),  # MLA: one group of 20 heads
    ],
)
def test_matches_reference(dtype, heads, key_width, n_blocks):
    _check(3, 1 if heads == 20 else 2, heads, key_width, n_blocks, dtype)


@pytest.mark.gpu
@pytest.mark.parametrize("groups, heads, key_width", [(8, 4, 128), (1, 20, 576)])
def test_long_context_on_gpu(groups, heads, key_width):
    _check(4, groups, heads, key_width, 96 * 1024 // 64, torch.bfloat16)
