"""CUDA-graph decode (asynctls_hf.graphs): replayed steps equal eager ones (GPU), fallbacks warn once and decode
eagerly, the CPU path never tries."""

from __future__ import annotations

import inspect
import warnings

import pytest
import torch
from helpers import CACHE_KWARG, greedy, left_padded_batch, returned_cache, tiny_glm4_moe_lite, tiny_qwen3

import asynctls_hf
from asynctls_hf import AsyncTLSCache, GraphFallbackWarning

# 5 * 16 token slots hold the 36 picks and their successors (offloaded by tokens, lag 1).
SPARSE = dict(token_budget=48, sink_tokens=4, local_tokens=8, block_size=16, top_blocks=5)
STEPS = 24


def _inputs(lengths, device):
    return tuple(tensor.to(device) for tensor in left_padded_batch(lengths))


def _assert_close_generation(eager, graphed, atol: float):
    assert torch.equal(eager.sequences, graphed.sequences)
    for step, (expected, got) in enumerate(zip(eager.scores, graphed.scores, strict=True)):
        torch.testing.assert_close(got, expected, atol=atol, rtol=0, msg=f"logits differ at step {step}")


def test_cpu_decoding_never_tries_a_graph():
    model = tiny_qwen3()
    input_ids, attention_mask = _inputs([90, 70], "cpu")
    with asynctls_hf.patched(model, **SPARSE), warnings.catch_warnings():
        warnings.simplefilter("error", GraphFallbackWarning)
        output = greedy(model, input_ids, attention_mask, 4)
    assert returned_cache(output).stats()["graph_replays"] == 0


def test_the_patched_forward_shows_the_models_signature():
    """generate() passes position_ids (and, in older transformers, cache_position) only to a forward whose signature
    names them; without them the model computes positions from host ints, which a captured step would freeze."""
    model = tiny_qwen3()
    stock = inspect.signature(model.forward)
    seen = []
    with asynctls_hf.patched(model, **SPARSE):
        assert inspect.signature(model.forward) == stock
        model.register_forward_pre_hook(lambda module, args, kwargs: seen.append(set(kwargs)), with_kwargs=True)
        greedy(model, *_inputs([90, 70], "cpu"), 3)
    assert all("position_ids" in names for names in seen)


def test_cuda_graph_setting_is_validated():
    with pytest.raises(ValueError, match="cuda_graph"):
        asynctls_hf.AsyncTLSConfig(cuda_graph="yes")


MODELS = {
    "qwen3": (lambda: tiny_qwen3().cuda(), 1e-5),
    "glm4_moe_lite": (lambda: tiny_glm4_moe_lite().to("cuda", torch.bfloat16), 2e-2),
}


@pytest.mark.gpu
@pytest.mark.parametrize("family", sorted(MODELS))
@pytest.mark.parametrize("lengths", [[150, 131, 97], [201, 77]], ids=["batch3", "batch2"])
def test_replayed_decode_equals_eager_decode(family, lengths):
    make_model, atol = MODELS[family]
    model = make_model()
    input_ids, attention_mask = _inputs(lengths, "cuda")
    with asynctls_hf.patched(model, **SPARSE, cuda_graph=False):
        eager = greedy(model, input_ids, attention_mask, STEPS)
    with asynctls_hf.patched(model, **SPARSE), warnings.catch_warnings():
        warnings.simplefilter("error", GraphFallbackWarning)
        graphed = greedy(model, input_ids, attention_mask, STEPS)
    _assert_close_generation(eager, graphed, atol)
    stats = returned_cache(graphed).stats()
    # generate() runs STEPS - 1 decode forwards: the first warms up, the second is captured; each is replayed.
    assert stats["graph_replays"] == STEPS - 2
    assert stats["attended_tokens"] == returned_cache(eager).stats()["attended_tokens"]


@pytest.mark.gpu
@pytest.mark.parametrize("family", sorted(MODELS))
@pytest.mark.parametrize(("lag", "granularity"), [(0, "block"), (1, "block"), (1, "token")])
def test_replayed_offloaded_decode_equals_eager_offloaded_decode(family, lag, granularity):
    """Copies on the side stream are captured in the graph; lag 0 also equals the resident cache."""
    make_model, atol = MODELS[family]
    model = make_model()
    input_ids, attention_mask = _inputs([150, 131, 97], "cuda")
    offload = dict(offload=True, prefetch_lag=lag, offload_granularity=granularity)
    with asynctls_hf.patched(model, **SPARSE, **offload, cuda_graph=False):
        eager = greedy(model, input_ids, attention_mask, STEPS)
    with asynctls_hf.patched(model, **SPARSE, **offload), warnings.catch_warnings():
        warnings.simplefilter("error", GraphFallbackWarning)
        graphed = greedy(model, input_ids, attention_mask, STEPS)
    _assert_close_generation(eager, graphed, atol)
    eager_stats, graphed_stats = returned_cache(eager).stats(), returned_cache(graphed).stats()
    assert graphed_stats["offloaded"] and graphed_stats["graph_replays"] == STEPS - 2
    for name in ("h2d_bytes", "hit_rate", "attended_tokens"):
        assert graphed_stats[name] == eager_stats[name], name
    if lag == 0:
        with asynctls_hf.patched(model, **SPARSE, cuda_graph=False):
            resident = greedy(model, input_ids, attention_mask, STEPS)
        _assert_close_generation(resident, graphed, atol)


@pytest.mark.gpu
def test_a_reset_cache_captures_again_and_still_equals_eager():
    model = tiny_qwen3().cuda()
    input_ids, attention_mask = _inputs([150, 131, 97], "cuda")
    with asynctls_hf.patched(model, **SPARSE, cuda_graph=False):
        eager = greedy(model, input_ids, attention_mask, STEPS)
    with asynctls_hf.patched(model, **SPARSE):
        cache = AsyncTLSCache.for_model(model, max_length=input_ids.shape[1] + STEPS)
        first = greedy(model, input_ids, attention_mask, STEPS, **{CACHE_KWARG: cache})
        assert cache.graph_replays == STEPS - 2
        cache.reset()
        second = greedy(model, input_ids, attention_mask, STEPS, **{CACHE_KWARG: cache})
        assert cache.graph_replays == STEPS - 1  # captured again at the first decode step: no warm-up needed
    _assert_close_generation(eager, first, 1e-5)
    _assert_close_generation(eager, second, 1e-5)


@pytest.mark.gpu
def test_beam_search_falls_back_to_eager_with_one_warning():
    model = tiny_qwen3().cuda()
    input_ids, attention_mask = _inputs([150, 131], "cuda")
    kwargs = dict(num_beams=3, num_return_sequences=2)
    with asynctls_hf.patched(model, **SPARSE, cuda_graph=False):
        eager = greedy(model, input_ids, attention_mask, 12, **kwargs)
    with asynctls_hf.patched(model, **SPARSE), pytest.warns(GraphFallbackWarning, match="beam search") as caught:
        graphed = greedy(model, input_ids, attention_mask, 12, **kwargs)
    assert len([w for w in caught if issubclass(w.category, GraphFallbackWarning)]) == 1
    assert torch.equal(eager.sequences, graphed.sequences)
    assert returned_cache(graphed).graph_replays == 0


@pytest.mark.gpu
def test_a_cache_without_max_length_falls_back_to_eager_with_a_warning():
    model = tiny_qwen3().cuda()
    input_ids, attention_mask = _inputs([150, 131], "cuda")
    with asynctls_hf.patched(model, **SPARSE, cuda_graph=False):
        eager = greedy(model, input_ids, attention_mask, 8)
    with asynctls_hf.patched(model, **SPARSE), pytest.warns(GraphFallbackWarning, match="max_length"):
        cache = AsyncTLSCache.for_model(model)
        graphed = greedy(model, input_ids, attention_mask, 8, **{CACHE_KWARG: cache})
    assert torch.equal(eager.sequences, graphed.sequences)
    assert cache.graph_replays == 0


def test_eager_moe_experts_are_recognised_as_uncapturable():
    from asynctls_hf.graphs import _eager_experts

    model = tiny_glm4_moe_lite()
    model.set_experts_implementation("eager")
    assert _eager_experts(model)
    model.set_experts_implementation("batched_mm")
    assert not _eager_experts(model)
    assert not _eager_experts(tiny_qwen3())
