"""A tiny Qwen3 decodes the same greedy tokens with the Triton kernels as with the PyTorch reference."""

import pytest
import torch
from helpers import greedy, left_padded_batch, returned_cache, tiny_qwen3
from op_testing import DEVICE

import asynctls_hf

pytest.importorskip("triton")

NEW_TOKENS = 10
TIMINGS = ("copy_wait_seconds", "wait_seconds")  # the stats keys that hold wall-clock times


def _generate(model, input_ids, attention_mask, backend, **settings):
    """Eager decode (cuda_graph=False), so that every step calls the counted kernels' Python wrappers -> (new
    tokens, the cache's stats without its timings)."""
    asynctls_hf.patch(
        model, **{**dict(token_budget=24, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=32), **settings},
        backend=backend, cuda_graph=False,
    )
    output = greedy(model, input_ids, attention_mask, NEW_TOKENS)
    return output.sequences[:, input_ids.shape[1] :], _without_timings(returned_cache(output).stats())


def _without_timings(stats):
    """The stats with the copy-wait times (wall-clock measurements, TIMINGS) left out, at every level."""
    if isinstance(stats, dict):
        return {key: _without_timings(value) for key, value in stats.items() if key not in TIMINGS}
    if isinstance(stats, list):
        return [_without_timings(value) for value in stats]
    return stats


def test_triton_backend_generates_the_same_tokens(monkeypatch):
    from asynctls_hf.ops import sparse_attention_triton

    launches = []
    kernel = sparse_attention_triton.sparse_attention

    def counted_kernel(*args):
        launches.append(args)
        return kernel(*args)

    monkeypatch.setattr(sparse_attention_triton, "sparse_attention", counted_kernel)
    model = tiny_qwen3().to(DEVICE)
    input_ids, attention_mask = (tensor.to(DEVICE) for tensor in left_padded_batch([40, 37, 29]))

    with torch.no_grad():
        torch_tokens, torch_stats = _generate(model, input_ids, attention_mask, "torch")
        assert not launches
        triton_tokens, triton_stats = _generate(model, input_ids, attention_mask, "triton")

    assert triton_stats["sparse_layer_steps"] > 0 and triton_stats == torch_stats
    assert len(launches) == triton_stats["sparse_layer_steps"]
    assert torch.equal(triton_tokens, torch_tokens)


@pytest.mark.parametrize("granularity", ["block", "token"])
def test_triton_backend_generates_the_same_tokens_offloaded(monkeypatch, granularity):
    """With the cache offloaded (exact mode, block or token slots) the resident-set plan and the position
    translation run as kernels too."""
    from asynctls_hf.ops import resident_triton

    launches = []
    for name in ("plan_resident_blocks", "translate_positions"):
        kernel = getattr(resident_triton, name)
        monkeypatch.setattr(resident_triton, name,
                            lambda *args, kernel=kernel, name=name: launches.append(name) or kernel(*args))
    model = tiny_qwen3().to(DEVICE)
    input_ids, attention_mask = (tensor.to(DEVICE) for tensor in left_padded_batch([70, 61, 29]))
    settings = dict(offload=True, prefetch_lag=0, top_blocks=4, offload_granularity=granularity)
    with torch.no_grad():
        torch_tokens, torch_stats = _generate(model, input_ids, attention_mask, "torch", **settings)
        assert not launches
        triton_tokens, triton_stats = _generate(model, input_ids, attention_mask, "triton", **settings)

    assert triton_stats["sparse_layer_steps"] > 0
    if granularity == "token":  # exact token slots are filled in the order selection lists the picks, which
        # differs between the backends: which tokens stay resident, so the hits and copies, may differ a little
        assert_same_except_residency(triton_stats, torch_stats)
    else:
        assert triton_stats == torch_stats
    assert {"plan_resident_blocks", "translate_positions"} <= set(launches)
    assert torch.equal(triton_tokens, torch_tokens)


def assert_same_except_residency(stats: dict, reference: dict) -> None:
    """Equal statistics but for what depends on which tokens stay resident (hits, copies, bytes copied); those
    account for the same wanted tokens and differ by at most a few percent."""
    residency = {"hit_rate", "h2d_bytes", "hit_blocks", "copied_blocks", "copied_bytes"}
    assert {k: v for k, v in stats.items() if k not in residency | {"layers"}} == {
        k: v for k, v in reference.items() if k not in residency | {"layers"}}
    for layer, reference_layer in zip(stats["layers"], reference["layers"], strict=True):
        assert {k: v for k, v in layer.items() if k not in residency} == {
            k: v for k, v in reference_layer.items() if k not in residency}
        assert layer["hit_blocks"] + layer["copied_blocks"] == layer["wanted_blocks"]
        assert abs(layer["hit_blocks"] - reference_layer["hit_blocks"]) <= 0.05 * layer["wanted_blocks"]

