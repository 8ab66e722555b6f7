"""Helpers shared by the op tests."""

import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")

# Bound on ||output - reference|| / ||reference|| for outputs rounded to each dtype.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}
# Scores computed in float32 from exactly converted inputs differ only by summation order.
FLOAT32_MATH_TOLERANCE = 1e-5


def relative_error(output: torch.Tensor, reference: torch.Tensor) -> float:
    """||output - reference|| / ||reference|| in float64 (NaN anywhere gives NaN)."""
    output, reference = output.double(), reference.double()
    return ((output - reference).norm() / reference.norm()).item()


def assert_relative_error(output: torch.Tensor, reference: torch.Tensor, bound: float) -> None:
    assert output.shape == reference.shape, (output.shape, reference.shape)
    error = relative_error(output, reference)
    assert error <= bound, f"relative error {error:.3g} above {bound:.1g}"


def assert_scores_match(output: torch.Tensor, reference: torch.Tensor, bound: float = FLOAT32_MATH_TOLERANCE) -> None:
    """Scores with -inf for masked entries: the same entries are -inf, and the rest agree within `bound`."""
    assert output.dtype == torch.float32 and output.shape == reference.shape
    masked = reference == float("-inf")
    assert torch.equal(output == float("-inf"), masked)
    assert_relative_error(output[~masked], reference[~masked], bound)


def left_padded_row_start(batch: int, longest_pad: int) -> torch.Tensor:
    """Different first real slots per row, from 0 to longest_pad."""
    return torch.linspace(0, longest_pad, batch).round().long().to(DEVICE)
