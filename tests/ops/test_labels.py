"""quantize_labels, append_token_labels and candidate_scores: the Triton kernels against the PyTorch reference."""

import pytest
import torch
from op_testing import DEVICE, assert_scores_match

from asynctls_hf.ops import append_token_labels, candidate_scores, naive, quantize_labels

pytest.importorskip("triton")
pytestmark = pytest.mark.usefixtures("poison_allocations")

CASES = [  # (bits, key dtype, label channels)
    (4, torch.float32, 32),
    (4, torch.bfloat16, 192),  # MLA: 192 of 576 channels (a third, not a power of two)
    (8, torch.bfloat16, 32),
    (8, torch.float16, 16),
    (16, torch.float16, 32),
    (16, torch.bfloat16, 16),
]


def _assert_same_quantization(quantized, reference) -> None:
    """Bit-exact: the kernel and the reference both divide with correct rounding and round half to even."""
    for output, expected in zip(quantized, reference, strict=True):
        assert output.dtype == expected.dtype and torch.equal(output, expected)


@pytest.mark.parametrize("bits, dtype, channels", CASES)
def test_append_token_labels_writes_the_reference_label_at_the_slot(bits, dtype, channels):
    batch, groups, capacity, key_width = 3, 2, 11, 2 * channels + 3
    key = torch.randn(batch, groups, 1, key_width, dtype=dtype, device=DEVICE)
    label_channels = torch.stack([torch.randperm(key_width, device=DEVICE)[:channels].sort().values
                                  for _ in range(batch * groups)]).view(batch, groups, channels)
    width = channels // 2 if bits == 4 else channels
    codes_dtype = dtype if bits == 16 else torch.uint8
    storage = (torch.randint(0, 200, (batch, groups, capacity, width), device=DEVICE).to(codes_dtype),
               torch.randn(batch, groups, capacity, device=DEVICE), torch.randn(batch, groups, capacity, device=DEVICE))
    reference = tuple(tensor.clone() for tensor in storage)
    slot = torch.tensor(7, device=DEVICE)
    append_token_labels(key, label_channels, *storage, slot, bits, backend="triton")
    naive.append_token_labels(key, label_channels, *reference, slot, bits)
    for output, expected in zip(storage, reference, strict=True):  # the slot written, every other slot untouched
        assert torch.equal(output, expected)
    rebuilt = quantize_labels(key.gather(-1, label_channels[:, :, None, :]), bits, backend="triton")
    for output, expected in zip(storage, rebuilt, strict=True):
        assert torch.equal(output[:, :, 7], expected[:, :, 0])


@pytest.mark.parametrize("bits, dtype, channels", CASES)
def test_quantize_matches_reference(bits, dtype, channels):
    channel_keys = torch.randn(2, 3, 37, channels, dtype=dtype, device=DEVICE)
    channel_keys[0, 0, 5] = 1.5  # a constant label: scale falls back to 1
    codes, scale, zero = quantize_labels(channel_keys, bits, backend="triton")
    _assert_same_quantization((codes, scale, zero), naive.quantize_labels(channel_keys, bits))


def _label_storage(batch, groups, slots, channels, bits, dtype):
    channel_keys = torch.randn(batch, groups, slots, channels, dtype=dtype, device=DEVICE)
    return naive.quantize_labels(channel_keys, bits)


@pytest.mark.gpu
@pytest.mark.parametrize("groups, channels", [(8, 32), (1, 128)])
def test_long_context_on_gpu(groups, channels):
    batch, stored, bits = 4, 96 * 1024, 4
    channel_keys = torch.randn(batch, groups, stored, channels, dtype=torch.bfloat16, device=DEVICE)
    codes, scale, zero = quantize_labels(channel_keys, bits, backend="triton")
    _assert_same_quantization((codes, scale, zero), naive.quantize_labels(channel_keys, bits))


def _kept_blocks(batch, groups, n_blocks, kept, invalid_ranks):
    """Block top-k output: distinct block indices [B, NG, kept] and their scores, -inf at the given ranks."""
    kept_blocks = torch.stack([torch.randperm(n_blocks, device=DEVICE)[:kept] for _ in range(batch * groups)])
    kept_scores = torch.randn(batch * groups, kept, device=DEVICE).sort(dim=-1, descending=True).values
    kept_scores[:, invalid_ranks] = float("-inf")
    return kept_blocks.view(batch, groups, kept), kept_scores.view(batch, groups, kept)


@pytest.mark.parametrize(
    "bits, dtype, channels, heads, key_width",
    [(4, torch.float32, 16, 4, 64), (4, torch.bfloat16, 128, 20, 576), (8, torch.float16, 32, 1, 128),
     (16, torch.bfloat16, 16, 8, 32)],
)
@pytest.mark.parametrize("head_scaling", [None, 0.125])
def test_candidate_scores_fuse_candidates_masks_and_scores(bits, dtype, channels, heads, key_width, head_scaling):
    batch, groups, block_size, stored = 3, 1 if heads == 20 else 2, 16, 111
    n_blocks = -(-stored // block_size)
    codes, scale, zero = _label_storage(batch, groups, n_blocks * block_size, channels, bits, dtype)
    query = torch.randn(batch, groups, heads, key_width, dtype=dtype, device=DEVICE)
    label_channels = torch.stack(
        [torch.randperm(key_width, device=DEVICE)[:channels].sort().values for _ in range(batch * groups)]
    ).view(batch, groups, channels)
    kept_blocks, kept_scores = _kept_blocks(batch, groups, n_blocks, 5, invalid_ranks=[4])
    candidate_low = torch.tensor([4, 20, 37], device=DEVICE)  # sinks after each row's padding
    arguments = (query, label_channels, codes, scale, zero, kept_blocks, kept_scores, candidate_low,
                 torch.tensor([stored - 8, stored - 8, stored - 30], device=DEVICE),
                 block_size, bits, head_scaling)
    candidates, scores = candidate_scores(*arguments, backend="triton")
    reference_candidates, reference_scores = naive.candidate_scores(*arguments)
    assert torch.equal(candidates, reference_candidates)
    assert_scores_match(scores, reference_scores)
    assert not scores.isnan().any()


def test_head_mass_of_a_row_without_candidates_is_minus_infinity_on_both_backends():
    """Row 1's bounds leave no slot to pick (a short, left-padded row): its scores are -inf, not NaN, and row 0's
    are unchanged by it."""
    batch, groups, heads, channels, bits, block_size, n_blocks = 2, 1, 6, 16, 4, 16, 7
    codes, scale, zero = _label_storage(batch, groups, n_blocks * block_size, channels, bits, torch.float32)
    query = torch.randn(batch, groups, heads, 64, device=DEVICE)
    label_channels = torch.arange(channels, device=DEVICE).expand(batch, groups, -1).contiguous()
    kept_blocks, kept_scores = _kept_blocks(batch, groups, n_blocks, 5, invalid_ranks=[])
    arguments = (query, label_channels, codes, scale, zero, kept_blocks, kept_scores,
                 torch.tensor([0, 90], device=DEVICE), torch.tensor([100, 90], device=DEVICE), block_size, bits, 0.125)
    for backend in ("torch", "triton"):
        _, scores = candidate_scores(*arguments, backend=backend)
        assert not scores.isnan().any()
        assert torch.isneginf(scores[1]).all()
        assert torch.isfinite(scores[0]).sum() > 0


def test_head_mass_picks_what_one_head_attends_to_where_the_summed_query_would_not():
    """Two heads over three candidates: head 0 spreads its mass (0.63, 0.28, 0.09 after scaling), head 1 puts
    0.75 on candidate 2. The summed raw scores (40, 36, 39) rank candidate 0 first; head mass ranks candidate 2
    first (0.84 against 0.76)."""
    head_scores = torch.tensor([[[[40.0, 36.0, 30.0], [0.0, 0.0, 9.0]]]])  # [B=1, NG=1, G=2, N=3]
    scaling = 0.2
    mass = naive.head_mass_scores(head_scores, scaling)
    assert head_scores.sum(dim=2).argmax().item() == 0
    assert mass.argmax().item() == 2
    expected = torch.softmax(head_scores * scaling, dim=-1).sum(dim=2).log()
    torch.testing.assert_close(mass, expected)


def test_head_mass_of_a_group_without_candidates_is_minus_infinity_not_nan():
    head_scores = torch.full((2, 1, 4, 5), float("-inf"))
    head_scores[0, 0, :, 1] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    mass = naive.head_mass_scores(head_scores, 0.5)
    assert not mass.isnan().any()
    assert torch.isinf(mass[1]).all() and (mass[1] < 0).all()
    assert mass[0, 0, 1].item() == pytest.approx(torch.tensor(4.0).log().item())  # every head's mass on slot 1
    assert torch.isinf(mass[0, 0, [0, 2, 3, 4]]).all()


@pytest.mark.gpu
@pytest.mark.parametrize("head_scaling", [None, 128**-0.5])
def test_candidate_scores_at_full_size_on_gpu(head_scaling):
    batch, groups, heads, channels, bits, block_size, stored = 4, 8, 4, 32, 4, 64, 96 * 1024
    codes, scale, zero = _label_storage(batch, groups, stored, channels, bits, torch.bfloat16)
    query = torch.randn(batch, groups, heads, 128, dtype=torch.bfloat16, device=DEVICE)
    label_channels = torch.randint(0, 128, (batch, groups, channels), device=DEVICE)
    kept_blocks, kept_scores = _kept_blocks(batch, groups, stored // block_size, 128, invalid_ranks=[127])
    arguments = (query, label_channels, codes, scale, zero, kept_blocks, kept_scores,
                 torch.full((batch,), 16, device=DEVICE),
                 torch.full((batch,), stored - 64, device=DEVICE), block_size, bits, head_scaling)
    candidates, scores = candidate_scores(*arguments, backend="triton")
    reference_candidates, reference_scores = naive.candidate_scores(*arguments)
    assert torch.equal(candidates, reference_candidates)
    assert_scores_match(scores, reference_scores)
