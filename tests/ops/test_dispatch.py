"""Backend dispatch of the decode ops: which implementation runs, and the errors when Triton cannot."""

import pytest
import torch
from op_testing import DEVICE

from asynctls_hf import AsyncTLSConfig, ops
from asynctls_hf.ops import naive


def _attention_inputs(heads=4, value_width=32, device=DEVICE):
    query = torch.randn(1, 2, heads, 32, device=device)
    keys = torch.randn(1, 2, 40, 32, device=device)
    values = torch.randn(1, 2, 40, value_width, device=device)
    slots = torch.randint(0, 40, (1, 2, 9), device=device)
    return query, keys, values, slots, torch.ones_like(slots, dtype=torch.bool)


def _spy_on_reference(monkeypatch):
    calls = []
    reference = naive.sparse_attention

    def spy(*args):
        calls.append(args)
        return reference(*args)

    monkeypatch.setattr(naive, "sparse_attention", spy)
    return calls


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_cpu_tensors_use_the_reference(backend, monkeypatch):
    calls = _spy_on_reference(monkeypatch)
    ops.sparse_attention(*_attention_inputs(device=torch.device("cpu")), 0.5, backend=backend)
    assert len(calls) == 1


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        ops.sparse_attention(*_attention_inputs(), 0.5, backend="cuda")


def test_config_accepts_triton_backend():
    assert AsyncTLSConfig(backend="triton").backend == "triton"
    with pytest.raises(ValueError, match="backend"):
        AsyncTLSConfig(backend="tensorrt")


def test_triton_on_cpu_needs_the_interpreter(monkeypatch):
    pytest.importorskip("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ops.sparse_attention(*_attention_inputs(device=torch.device("cpu")), 0.5, backend="triton")


def test_unsupported_shape_raises_when_triton_is_requested(monkeypatch):
    pytest.importorskip("triton")
    calls = _spy_on_reference(monkeypatch)
    with pytest.raises(ValueError, match="value width"):
        ops.sparse_attention(*_attention_inputs(value_width=1024), 0.5, backend="triton")
    with pytest.raises(ops.TritonUnsupportedError, match="heads"):
        ops.sparse_attention(*_attention_inputs(heads=65), 0.5, backend="triton")
    assert not calls


@pytest.mark.gpu
def test_auto_on_cuda_runs_triton_and_falls_back_for_unsupported_shapes(monkeypatch):
    calls = _spy_on_reference(monkeypatch)
    ops.sparse_attention(*_attention_inputs(), 0.5, backend="auto")
    assert not calls
    with pytest.warns(UserWarning, match="using PyTorch"):
        ops.sparse_attention(*_attention_inputs(value_width=1024), 0.5, backend="auto")
    assert len(calls) == 1
