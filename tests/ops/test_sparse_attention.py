"""sparse_attention: the split-K Triton kernel against the PyTorch reference."""

import pytest
import torch
from op_testing import DEVICE, TOLERANCE, assert_relative_error, left_padded_row_start

from asynctls_hf.ops import naive, sparse_attention

pytest.importorskip("triton")
pytestmark = pytest.mark.usefixtures("poison_allocations")


def _inputs(batch, groups, heads, key_width, value_width, stored, n_slots, dtype, values_in_keys=False):
    """Random query, storage and selection; slots before each row's start (left padding) and a random third
    of the entries are invalid, with at least one valid entry per row and group."""
    query = torch.randn(batch, groups, heads, key_width, dtype=dtype, device=DEVICE)
    keys = torch.randn(batch, groups, stored, key_width, dtype=dtype, device=DEVICE)
    if values_in_keys:
        values = keys[..., :value_width]
    else:
        values = torch.randn(batch, groups, stored, value_width, dtype=dtype, device=DEVICE)
    slots = torch.randint(0, stored, (batch, groups, n_slots), device=DEVICE)
    row_start = left_padded_row_start(batch, stored // 3)
    valid = (slots >= row_start[:, None, None]) & (torch.rand(batch, groups, n_slots, device=DEVICE) > 0.3)
    slots[..., -1] = stored - 1
    valid[..., -1] = True
    return query, keys, values, slots, valid


def _check(inputs, dtype, num_splits=None):
    query, keys, values, slots, valid = inputs
    scaling = query.shape[-1] ** -0.5
    if num_splits is None:
        output = sparse_attention(query, keys, values, slots, valid, scaling, backend="triton")
    else:
        from asynctls_hf.ops import sparse_attention_triton

        output = sparse_attention_triton.sparse_attention(query, keys, values, slots, valid, scaling, num_splits)
    assert output.dtype == dtype
    assert_relative_error(output, naive.sparse_attention(query, keys, values, slots, valid, scaling), TOLERANCE[dtype])


@pytest.mark.parametrize(
    "dtype, groups, heads, head_dim, n_slots",
    [
        (torch.float32, 2, 1, 32, 111),
        (torch.bfloat16, 2, 4, 64, 63),
        (torch.float16, 1, 8, 128, 111),
        (torch.float32, 2, 8, 64, 63),
        (torch.bfloat16, 1, 1, 128, 111),
    ],
)
def test_gqa_matches_reference(dtype, groups, heads, head_dim, n_slots):
    _check(_inputs(3, groups, heads, head_dim, head_dim, 160, n_slots, dtype), dtype)


@pytest.mark.parametrize("num_splits", [1, 2, 5])
def test_any_number_of_splits(num_splits):
    dtype = torch.float32
    _check(_inputs(2, 2, 4, 64, 64, 160, 111, dtype), dtype, num_splits)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mla_values_are_a_view_of_keys(dtype):
    _check(_inputs(2, 1, 20, 576, 512, 80, 45, dtype, values_in_keys=True), dtype, num_splits=2)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "groups, heads, key_width, value_width, values_in_keys",
    [(8, 4, 128, 128, False), (8, 8, 128, 128, False), (1, 20, 576, 512, True)],
)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_long_context_on_gpu(groups, heads, key_width, value_width, values_in_keys, dtype):
    inputs = _inputs(4, groups, heads, key_width, value_width, 96 * 1024, 1024, dtype, values_in_keys)
    _check(inputs, dtype)
