"""The decode-step benchmark's stock caches: the StaticCache its stock-compiled method times holds what the
DynamicCache of its stock method holds, so both time the same step. The status of a run that does not fit."""

from __future__ import annotations

import pytest
import torch

from asynctls_hf.api import cache_argument
from asynctls_hf.bench import decode_step_bench
from asynctls_hf.bench.generate_bench import did_not_fit
from tests.helpers import tiny_glm4_moe_lite, tiny_qwen3


@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite], ids=["qwen3", "glm"])
def test_static_stock_cache_gives_the_dynamic_caches_logits(build, monkeypatch):
    monkeypatch.setattr(decode_step_bench, "DTYPE", torch.float32)
    model = build()
    batch, context = 3, 37
    device = torch.device("cpu")
    dynamic = decode_step_bench.filled_stock_cache(model, batch, context, device)
    static = decode_step_bench.filled_stock_cache(model, batch, context, device, max_length=context + 5)
    assert type(static).__name__ == "StaticCache" and static.layers[0].keys.shape[2] == context + 5
    input_ids = torch.tensor([[3], [5], [7]])
    with torch.no_grad():
        for step in range(3):
            position_ids = torch.full((batch, 1), context + step)
            logits = [model(input_ids=input_ids, position_ids=position_ids, logits_to_keep=1,
                            **{cache_argument(model): cache}).logits for cache in (dynamic, static)]
            torch.testing.assert_close(logits[1], logits[0], atol=1e-5, rtol=1e-5)
            input_ids = logits[0][:, -1].argmax(dim=-1, keepdim=True)


def test_a_run_that_does_not_fit_keeps_what_it_tried_to_allocate():
    error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 13.50 GiB. GPU 0 has a total capacity of "
                                   "139.81 GiB of which 1.2 GiB is free.\nIncluding non-PyTorch memory ...")
    assert did_not_fit(error) == "does not fit: CUDA out of memory. Tried to allocate 13.50 GiB"
    assert did_not_fit(RuntimeError()) == "does not fit: RuntimeError"


@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite], ids=["qwen3", "glm"])
def test_smoothed_queries_are_the_running_mean_of_the_projections(build):
    model = build()
    projections = [getattr(layer.self_attn, "q_b_proj", None) or layer.self_attn.q_proj for layer in model.model.layers]
    inputs = [torch.randn(2, 1, projections[0].in_features) for _ in range(3)]
    with decode_step_bench.SmoothedQueries(model, 1.0) as unchanged:
        assert unchanged.handles == []
    with torch.no_grad(), decode_step_bench.SmoothedQueries(model, 0.25) as smoothed:
        assert len(smoothed.handles) == len(projections)
        outputs = [projections[0](x).clone() for x in inputs]
    raw = [torch.nn.functional.linear(x, projections[0].weight, projections[0].bias) for x in inputs]
    expected = raw[0]
    for step in (1, 2):
        expected = 0.75 * expected + 0.25 * raw[step]
        torch.testing.assert_close(outputs[step], expected)
    torch.testing.assert_close(outputs[0], raw[0])
    with torch.no_grad():  # the hooks are gone
        torch.testing.assert_close(projections[0](inputs[2]), raw[2])


def test_copy_programs_reach_the_offloaded_caches_transport(monkeypatch):
    import asynctls_hf

    monkeypatch.setattr(decode_step_bench, "DTYPE", torch.float32)
    model = tiny_qwen3()
    config = asynctls_hf.AsyncTLSConfig(offload=True, cuda_graph=False, block_size=16, top_blocks=4, sink_tokens=4,
                                        local_tokens=16, token_budget=40)
    with asynctls_hf.patched(model, config):
        cache = decode_step_bench.filled_asynctls_cache(model, 2, 40, 48, torch.device("cpu"), copy_programs=6)
        assert cache.offloaded
        # On the CPU copies are synchronous; the factory builds a CUDA device's transport with the cap (no stream in
        # exact mode, so nothing touches a GPU).
        assert cache.transport_factory(torch.device("cuda")).copy_programs == 6
    with pytest.raises(SystemExit):
        decode_step_bench.parse_args(["--copy-programs", "-1"])
