"""select_top_k and select_tokens_into: the radix-select Triton kernels against the PyTorch reference.

The selections come in no particular order, so they are compared as sets.
"""

import pytest
import torch
from op_testing import DEVICE

from asynctls_hf import ops
from asynctls_hf.ops import naive

pytest.importorskip("triton")
pytestmark = pytest.mark.usefixtures("poison_allocations")

NEG_INF = float("-inf")


def _top_k(scores, k, tile=None):
    """The Triton select_top_k, with a given tile size (several tiles per row) when `tile` is set."""
    if tile is None:
        return ops.select_top_k(scores, k, backend="triton")
    from asynctls_hf.ops import topk_triton

    return topk_triton.select_top_k(scores, k, tile)


def _assert_a_top_k(values, indices, scores, k):
    """indices [..., k] are k distinct entries of each row of scores [..., N], values are their scores, and they
    are a top k: nothing left out beats the smallest selected score (the k-th largest)."""
    assert values.shape == indices.shape == (*scores.shape[:-1], k)
    assert values.dtype == torch.float32 and indices.dtype == torch.int64
    assert ((indices >= 0) & (indices < scores.shape[-1])).all()
    sorted_indices = indices.sort(dim=-1).values
    assert (sorted_indices[..., 1:] != sorted_indices[..., :-1]).all(), "an index is selected twice"
    assert torch.equal(values, scores.gather(-1, indices))
    kth_largest = scores.topk(k, dim=-1).values[..., -1:]
    assert (values >= kth_largest).all()
    assert torch.equal((values > kth_largest).sum(dim=-1), (scores > kth_largest).sum(dim=-1))


def _assert_same_set(indices, reference_indices):
    assert torch.equal(indices.sort(dim=-1).values, reference_indices.sort(dim=-1).values)


@pytest.mark.parametrize(
    "leading, n, k, tile",
    [
        ((3,), 1000, 100, 256),
        ((2, 3), 1537, 128, None),
        ((2,), 8191, 944, 2048),
        ((5,), 300, 1, None),
        ((2,), 111, 111, 32),
        ((4,), 63, 3, 16),
        ((2,), 1, 1, None),
    ],
)
def test_matches_reference_on_distinct_scores(leading, n, k, tile):
    scores = torch.randn(*leading, n, device=DEVICE) * 10.0 ** torch.randint(-3, 4, (*leading, 1), device=DEVICE)
    values, indices = _top_k(scores, k, tile)
    _assert_a_top_k(values, indices, scores, k)
    _assert_same_set(indices, naive.select_top_k(scores, k)[1])


@pytest.mark.parametrize("tile", [None, 64])
def test_ties_give_k_distinct_entries(tile):
    scores = torch.randint(-3, 4, (6, 500), device=DEVICE).float()
    scores[0] = 2.0  # a whole row of equal scores
    scores[1, ::2] = -0.0  # zeros of both signs
    scores[1, 1::2] = 0.0
    scores[2, :7] = float("inf")
    for k in (1, 7, 100, 499):
        _assert_a_top_k(*_top_k(scores, k, tile), scores, k)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the interpreter's numpy, on purpose
def test_extreme_values():
    scores = torch.randn(3, 400, device=DEVICE)
    scores[0, :3] = torch.tensor([-3e38, 3e38, 1e-40])  # a range wider than float32, a denormal
    scores[1, ::3] = float("inf")
    scores[1, 1::3] = NEG_INF
    scores[2, 100:] = 1e-30 * torch.randn(300, device=DEVICE)  # most scores in the lowest bucket
    for k in (1, 5, 150, 399):
        _assert_a_top_k(*_top_k(scores, k, 64), scores, k)


@pytest.mark.parametrize("tile", [None, 128])
def test_minus_infinity_only_when_too_few_finite_scores(tile):
    scores = torch.randn(4, 700, device=DEVICE)
    finite_counts = [700, 30, 1, 0]
    for row, finite in enumerate(finite_counts):
        scores[row, torch.randperm(700, device=DEVICE)[finite:]] = NEG_INF
    k = 50
    values, indices = _top_k(scores, k, tile)
    _assert_a_top_k(values, indices, scores, k)
    assert torch.equal((values > NEG_INF).sum(dim=-1), torch.tensor([min(f, k) for f in finite_counts], device=DEVICE))


def test_narrowing_over_several_levels(monkeypatch):
    """Few buckets and a low rank limit: the survivors are narrowed again and again before the ranking."""
    from asynctls_hf.ops import topk_triton

    monkeypatch.setattr(topk_triton, "BUCKETS", 32)
    monkeypatch.setattr(topk_triton, "RANK_LIMIT", 16)
    scores = torch.randn(3, 2000, device=DEVICE)
    scores[1] = scores[1].exp() ** 8  # heavy tail
    scores[2, :1000] = 0.5  # many equal scores around the k-th
    for k in (1, 300, 1400):
        values, indices = _top_k(scores, k, 256)
        _assert_a_top_k(values, indices, scores, k)
        _assert_same_set(indices[:2], naive.select_top_k(scores[:2], k)[1])


def test_k_out_of_range_is_rejected():
    scores = torch.randn(2, 10, device=DEVICE)
    for backend in ("torch", "triton"):
        for k in (0, 11):
            with pytest.raises(ValueError, match="k must be"):
                ops.select_top_k(scores, k, backend=backend)


def _token_stage_inputs(batch, groups, n, n_fixed, finite_counts):
    """Label scores with -inf for the candidates that may not be picked (finite_counts[b] finite per group),
    distinct candidate slots, and fixed slots with some invalid."""
    token_scores = torch.randn(batch, groups, n, device=DEVICE)
    for row, finite in enumerate(finite_counts):
        token_scores[row, :, torch.randperm(n, device=DEVICE)[finite:]] = NEG_INF
    candidates = torch.stack([torch.randperm(4 * n, device=DEVICE)[:n] for _ in range(batch * groups)])
    fixed_slots = torch.randint(0, 4 * n, (batch, n_fixed), device=DEVICE)
    fixed_valid = torch.rand(batch, n_fixed, device=DEVICE) > 0.3
    return token_scores, candidates.view(batch, groups, n), fixed_slots, fixed_valid


def _check_token_stage(token_scores, candidates, k, fixed_slots, fixed_valid, tile=None):
    if tile is None:
        slots, valid = ops.select_tokens_into(token_scores, candidates, k, fixed_slots, fixed_valid, backend="triton")
    else:
        from asynctls_hf.ops import topk_triton

        slots, valid = topk_triton.select_tokens_into(token_scores, candidates, k, fixed_slots, fixed_valid, tile)
    reference_slots, reference_valid = naive.select_tokens_into(token_scores, candidates, k, fixed_slots, fixed_valid)
    assert slots.dtype == torch.int64 and valid.dtype == torch.bool and slots.shape == reference_slots.shape
    n_fixed = fixed_slots.shape[-1]
    assert torch.equal(slots[..., :n_fixed], reference_slots[..., :n_fixed])
    assert torch.equal(valid[..., :n_fixed], reference_valid[..., :n_fixed])
    # The selected candidates (valid ones exactly; invalid ones are any of the -inf candidates).
    selected, selected_valid = slots[..., n_fixed:], valid[..., n_fixed:]
    reference_selected, reference_selected_valid = reference_slots[..., n_fixed:], reference_valid[..., n_fixed:]
    big = torch.iinfo(torch.int64).max
    _assert_same_set(
        selected.masked_fill(~selected_valid, big), reference_selected.masked_fill(~reference_selected_valid, big)
    )
    slot_scores = torch.full(candidates.shape[:2] + (4 * candidates.shape[-1],), NEG_INF, device=DEVICE)
    slot_scores.scatter_(-1, candidates, token_scores)
    assert torch.equal(selected_valid, slot_scores.gather(-1, selected) > NEG_INF)
    sorted_selected = selected.sort(dim=-1).values
    assert (sorted_selected[..., 1:] != sorted_selected[..., :-1]).all(), "a candidate is selected twice"


@pytest.mark.parametrize(
    "batch, groups, n, k, n_fixed, tile",
    [(3, 2, 640, 100, 20, None), (2, 3, 1000, 200, 5, 256), (2, 1, 192, 192, 0, 64)],
)
def test_token_stage_matches_reference(batch, groups, n, k, n_fixed, tile):
    token_scores, candidates, fixed_slots, fixed_valid = _token_stage_inputs(
        batch, groups, n, n_fixed, [n, k // 2, 0][:batch]
    )
    _check_token_stage(token_scores, candidates, k, fixed_slots, fixed_valid, tile)


@pytest.mark.gpu
@pytest.mark.parametrize("leading, n, k", [((4, 8), 8192, 944), ((8, 8), 1536, 128), ((4, 8), 16384, 1968)])
def test_decode_sizes_on_gpu(leading, n, k):
    scores = torch.randn(*leading, n, device=DEVICE)
    values, indices = ops.select_top_k(scores, k, backend="triton")
    _assert_a_top_k(values, indices, scores, k)
    _assert_same_set(indices, naive.select_top_k(scores, k)[1])
    ties = scores.mul(4).round()
    _assert_a_top_k(*ops.select_top_k(ties, k, backend="triton"), ties, k)


@pytest.mark.gpu
def test_token_stage_at_decode_size_on_gpu():
    batch, groups, n, k, n_fixed = 8, 8, 8192, 944, 80
    token_scores, candidates, fixed_slots, fixed_valid = _token_stage_inputs(
        batch, groups, n, n_fixed, [n, 8000, 5000, 944, 943, 100, 1, 0]
    )
    _check_token_stage(token_scores, candidates, k, fixed_slots, fixed_valid)
