"""The mask-free per-row prefill attention against the masked reference (naive.causal_prefill_attention)."""

import pytest
import torch

from asynctls_hf import ops
from asynctls_hf.ops import naive

SHAPES = {  # heads, groups, key width, value width
    "gqa": (8, 2, 16, 16),
    "mla-latent": (4, 1, 24, 16),
    "mha": (3, 3, 8, 12),
}


def inputs(heads, groups, key_width, value_width, past, tokens, row_starts, device="cpu", dtype=torch.float32):
    generator = torch.Generator().manual_seed(past + tokens)
    batch, length = len(row_starts), past + tokens
    query = torch.randn(batch, heads, tokens, key_width, generator=generator).to(device, dtype)
    keys = torch.randn(batch, groups, length, key_width, generator=generator).to(device, dtype)
    values = torch.randn(batch, groups, length, value_width, generator=generator).to(device, dtype)
    return query, keys, values, torch.tensor(row_starts, device=device)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("past", "tokens", "row_starts"),
    [
        (0, 37, [0, 5, 36]),  # the first chunk: rows padded by 0, 5 and all but one token
        (29, 13, [0, 30, 41, 50]),  # a later chunk: padding ending inside it, at its last token, and after it
        (64, 1, [3, 64]),  # one query
    ],
)
def test_per_row_equals_the_masked_reference(shape, past, tokens, row_starts):
    query, keys, values, row_start = inputs(*SHAPES[shape], past, tokens, row_starts)
    expected = naive.causal_prefill_attention(query, keys, values, past, row_start, 0.3, 7)
    got = ops.causal_prefill_attention(query, keys, values, past, row_start, row_starts, 0.3, 7, per_row=True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_the_cpu_runs_the_masked_reference():
    query, keys, values, row_start = inputs(*SHAPES["gqa"], 0, 5, [0, 2])
    assert not ops.prefill_attention.flash_takes(query, keys, values)
    # Its working memory: per chunk of 64 queries over 1000 keys, two boolean masks and the float32 bias.
    assert ops.prefill_attention.working_bytes(8, 2, 16, 16, 3, 64, 1000, torch.float32, "cpu") == 3 * 64 * 1000 * 6
    assert ops.prefill_attention.working_bytes(8, 2, 16, 16, 3, 64, 50, torch.float32, "cpu") == 3 * 50 * 50 * 6


@pytest.mark.gpu
def test_the_flash_form_plans_no_mask_and_the_masked_one_does():
    """Qwen3-8B's prefill attention shape at 96k, batch 8: bf16 runs per row on flash (no mask), float32 (which
    flash does not take) the masked form."""
    shape, sizes = (32, 8, 128, 128), (8, 2048, 96 * 1024)
    assert ops.prefill_attention.working_bytes(*shape, *sizes, torch.bfloat16, "cuda") == 0
    assert ops.prefill_attention.working_bytes(*shape, *sizes, torch.float32, "cuda") == 8 * 2048 * 96 * 1024 * 6


@pytest.mark.gpu
@pytest.mark.parametrize("shape", ["gqa", "mha"])
def test_bf16_on_the_gpu_equals_the_masked_reference(shape):
    """In bf16 at head width 128 the default picks the per-row flash form, GQA included; it matches the
    reference."""
    heads, groups, _, _ = SHAPES[shape]
    query, keys, values, row_start = inputs(
        heads, groups, 128, 128, 1000, 301, [0, 77, 1200, 1301], device="cuda", dtype=torch.bfloat16
    )
    assert ops.prefill_attention.flash_takes(query, keys, values)
    expected = naive.causal_prefill_attention(query, keys, values, 1000, row_start, 128**-0.5, 128)
    got = ops.causal_prefill_attention(query, keys, values, 1000, row_start, [0, 77, 1200, 1301], 128**-0.5, 128)
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=0)
