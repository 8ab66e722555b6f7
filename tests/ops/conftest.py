"""Op-test fixtures. Without a GPU the kernels run in Triton's CPU interpreter (set in tests/conftest.py)."""

import pytest
import torch


def _poisoned(allocate):
    def allocate_poisoned(*args, **kwargs):
        tensor = allocate(*args, **kwargs)
        if tensor.dtype.is_floating_point:
            tensor.fill_(float("nan"))
        elif tensor.dtype != torch.bool:
            tensor.fill_(torch.iinfo(tensor.dtype).max)
        return tensor

    return allocate_poisoned


@pytest.fixture
def poison_allocations(monkeypatch):
    """Fill every tensor made by torch.empty / torch.empty_like with NaN (or the largest integer), so an output
    a kernel forgets to write cannot pass a comparison."""
    monkeypatch.setattr(torch, "empty", _poisoned(torch.empty))
    monkeypatch.setattr(torch, "empty_like", _poisoned(torch.empty_like))
