"""The offloaded cache on a CUDA device: pinned host store, copies on the side stream, Triton kernels. prefetch_lag=0
gives tokens and logits identical to offload=False over 256 decode steps at batch 4; lag 1 equals the reference of
lagged selection (of blocks or of tokens); random delays injected on the copy stream (block copies and the prefill's
store writes) and on the compute stream change nothing (the events order every slot read and write). Eager decoding
unless a test says otherwise: the reference selection is Python state a CUDA graph would not replay
(tests/test_graphs.py compares replayed steps to eager ones).
"""

from __future__ import annotations

import random

import pytest
import torch
from cache.test_offloaded import LaggedSelection, LaggedTokenSelection
from helpers import (
    assert_same_scores_exactly,
    greedy,
    left_padded_batch,
    returned_cache,
    tiny_glm4_moe_lite,
    tiny_qwen3,
)

import asynctls_hf
from asynctls_hf import attention
from asynctls_hf.offload import CudaStreamTransport

pytestmark = pytest.mark.gpu

# 10 * 16 token slots hold the 76 picks and their successors (offloaded by tokens, lag 1).
SPARSE = dict(token_budget=96, sink_tokens=4, local_tokens=16, block_size=16, top_blocks=10)
LENGTHS = [700, 650, 512, 389]


def generate(model, steps: int, *, reference_selection=None, cuda_graph: bool = False, **config):
    input_ids, attention_mask = (tensor.cuda() for tensor in left_padded_batch(LENGTHS))
    original = attention.select_tokens
    if reference_selection is not None:
        attention.select_tokens = reference_selection
    try:
        with asynctls_hf.patched(model, **SPARSE, **config, cuda_graph=cuda_graph):
            return greedy(model, input_ids, attention_mask, steps)
    finally:
        attention.select_tokens = original


@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite])
@pytest.mark.parametrize("cuda_graph", [False, True], ids=["eager", "graphed"])
@pytest.mark.parametrize("granularity", ["block", "token"])
def test_exact_mode_equals_resident_over_256_steps_at_batch_4(build, cuda_graph, granularity):
    model = build().cuda()
    resident = generate(model, 256, cuda_graph=cuda_graph)
    offloaded = generate(
        model, 256, offload=True, prefetch_lag=0, offload_granularity=granularity, cuda_graph=cuda_graph
    )
    assert_same_scores_exactly(resident, offloaded)
    stats = returned_cache(offloaded).stats()
    assert stats["graph_replays"] == (254 if cuda_graph else 0)
    assert stats["offloaded"] and 0 < stats["hit_rate"] < 1 and stats["h2d_bytes"] > 0
    layer = returned_cache(offloaded).layers[0].offloaded
    assert layer.store.keys.is_pinned()


def test_exact_mode_with_a_high_priority_stream_and_a_capped_copy_grid_equals_resident(monkeypatch):
    """The transport's knobs (copy stream priority, copy kernel's grid cap) change when copies run, not what
    lands; graphed, so the capped kernel is captured too."""
    model = tiny_qwen3().cuda()
    resident = generate(model, 64, cuda_graph=True)
    monkeypatch.setattr(asynctls_hf.cache.cache, "default_transport",  # a copy stream even in exact mode
                        lambda device, side_stream, graph_only: CudaStreamTransport(device, priority=-1,
                                                                                    copy_programs=3))
    offloaded = generate(model, 64, offload=True, prefetch_lag=0, cuda_graph=True)
    assert_same_scores_exactly(resident, offloaded)
    transport = next(iter(returned_cache(offloaded)._transports.values()))
    assert transport.copy_programs == 3 and transport.stream.priority < 0


@pytest.mark.parametrize("cuda_graph", [False, True], ids=["eager", "graphed"])
@pytest.mark.parametrize("lag", [0, 1])
def test_only_lag_1_uses_a_side_stream_and_graphed_only_in_captures(lag, cuda_graph):
    """Exact mode copies and writes its store on the compute stream; graphed lag 1 copies on its side stream only
    inside captured steps and writes its store on the compute stream: no second stream runs eager work, which would
    slow every later graph replay (CudaStreamTransport). Lag 1's copy launches leave most SMs to the compute beside
    them; exact mode's, with nothing beside them, are uncapped."""
    model = tiny_qwen3().cuda()
    offloaded = generate(model, 8, offload=True, prefetch_lag=lag, cuda_graph=cuda_graph)
    cache = returned_cache(offloaded)
    layer = cache.layers[0].offloaded
    assert (layer.engine.transport.stream is None) == (lag == 0)
    assert layer.engine.transport.graph_only == (lag == 1 and cuda_graph)
    assert (layer.store.write_stream is None) == (lag == 0 or cuda_graph)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    assert layer.engine.transport.copy_programs == (None if lag == 0 else sms // asynctls_hf.cache.cache.COPY_SM_SHARE)
    assert cache.stats()["graph_replays"] == (6 if cuda_graph else 0)


LAGGED_REFERENCE = {"block": LaggedSelection, "token": LaggedTokenSelection}


@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite])
@pytest.mark.parametrize("granularity", ["block", "token"])
def test_lag_1_equals_the_lagged_selection_reference(build, granularity):
    model = build().cuda()
    reference = generate(model, 64, reference_selection=LAGGED_REFERENCE[granularity]())
    offloaded = generate(model, 64, offload=True, prefetch_lag=1, offload_granularity=granularity)
    assert_same_scores_exactly(reference, offloaded)


@pytest.mark.parametrize(("lag", "granularity", "cuda_graph"), [
    (0, "block", False), (1, "block", False), (0, "token", False), (1, "token", False),
    (1, "block", True), (1, "token", True),
], ids=lambda value: {False: "eager", True: "graphed"}.get(value, str(value)) if isinstance(value, bool) else None)
def test_random_delays_on_both_streams_change_nothing(monkeypatch, lag, granularity, cuda_graph):
    """Sleep a random while on the copy stream before each upload and on the compute stream before each step's
    selection: a missing event would let attention read a slot before its copy lands, or a copy overwrite a slot
    a step still reads. (Exact mode copies on the compute stream: there the copy stream's sleeps delay only the
    prefill's writes to the store. Graphed, the sleeps inside the capture are replayed with it: the copy branch of
    every replayed step runs late.)"""
    model = tiny_qwen3().cuda()
    reference = (
        generate(model, 48) if lag == 0
        else generate(model, 48, reference_selection=LAGGED_REFERENCE[granularity]())
    )
    rng = random.Random(0)
    copy_blocks = CudaStreamTransport.copy_blocks

    def delayed_copy(self, *args, **kwargs):
        with torch.cuda.stream(self.stream):
            torch.cuda._sleep(rng.randint(0, 2_000_000))
        return copy_blocks(self, *args, **kwargs)

    def delayed_on_compute(method):  # the step's selection, before the engine plans its copies
        def delayed(self, *args, **kwargs):
            torch.cuda._sleep(rng.randint(0, 200_000))
            return method(self, *args, **kwargs)

        return delayed

    write = asynctls_hf.offload.HostBlockStore._write_from_device

    def delayed_write(self, *args):  # the prefill's writes to the store, on the copy stream too
        with torch.cuda.stream(self.write_stream):
            torch.cuda._sleep(rng.randint(0, 2_000_000))
        return write(self, *args)

    monkeypatch.setattr(CudaStreamTransport, "copy_blocks", delayed_copy)
    for name in ("begin_step", "fetch_tokens"):
        engine_class = asynctls_hf.offload.OffloadEngine
        monkeypatch.setattr(engine_class, name, delayed_on_compute(getattr(engine_class, name)))
    monkeypatch.setattr(asynctls_hf.offload.HostBlockStore, "_write_from_device", delayed_write)
    offloaded = generate(model, 48, offload=True, prefetch_lag=lag, offload_granularity=granularity,
                         cuda_graph=cuda_graph)
    assert_same_scores_exactly(reference, offloaded)
    stats = returned_cache(offloaded).stats()
    assert stats["graph_replays"] == (46 if cuda_graph else 0)
    # exact mode copies on the compute stream itself; a replayed step's wait is not timed (no events in a graph)
    assert stats["copy_wait_seconds"] > 0 if lag and not cuda_graph else stats["copy_wait_seconds"] == 0


@pytest.mark.parametrize("delayed", [False, True], ids=["prompt", "delayed-writes"])
def test_chunked_prefill_and_dense_steps_read_the_store_after_its_writes(monkeypatch, delayed):
    """A prefill in chunks and decode steps within the budget read the offloaded K/V back from the pinned store
    (by a kernel ordered after the kernels that wrote it on the copy stream, here delayed at random): the logits
    equal the resident cache's."""
    from helpers import assert_chunked_forward_equals_full

    from asynctls_hf.offload import HostBlockStore

    if delayed:
        rng, write = random.Random(0), HostBlockStore._write_from_device

        def delayed_write(self, *args):
            with torch.cuda.stream(self.write_stream):
                torch.cuda._sleep(rng.randint(0, 2_000_000))
            return write(self, *args)

        monkeypatch.setattr(HostBlockStore, "_write_from_device", delayed_write)
    model = tiny_qwen3().cuda()
    settings = dict(token_budget=4096, sink_tokens=4, local_tokens=16, block_size=16, top_blocks=256, offload=True)
    assert_chunked_forward_equals_full(model, [300, 211, 97], (64, 150, 299), atol=1e-4, **settings)
