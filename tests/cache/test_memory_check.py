"""generate() checks, before prefill, that the cache it preallocates fits each device's free memory."""

from __future__ import annotations

import pytest
import torch
from helpers import returned_cache, tiny_glm4_moe_lite, tiny_qwen3

import asynctls_hf
from asynctls_hf import AsyncTLSCache, AsyncTLSConfig, CacheMemoryError
from asynctls_hf.cache import cache as cache_module
from asynctls_hf.prefill import prefill_working_bytes

CONFIG = AsyncTLSConfig(block_size=16, top_blocks=4, token_budget=48, sink_tokens=4, local_tokens=16)


def generate(model, prompt_tokens: int = 70, max_new_tokens: int = 5, batch: int = 2):
    input_ids = torch.randint(1, 90, (batch, prompt_tokens), generator=torch.Generator().manual_seed(0))
    return model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens, do_sample=False,
        return_dict_in_generate=True,
    )


@pytest.mark.parametrize(("offload", "granularity"), [(False, "block"), (True, "block"), (True, "token")])
@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite])
def test_storage_bytes_predicts_what_generate_allocates(build, offload, granularity):
    config = CONFIG.replace(offload=offload, offload_granularity=granularity, prefetch_lag=int(granularity == "block"))
    model = asynctls_hf.patch(build(), config)
    cache = returned_cache(generate(model))
    assert cache.stats()["offloaded"] == offload
    for layer in cache.layers:
        assert layer.storage_bytes(2, cache.max_length, torch.float32, offload) == layer.memory_bytes()
        expected_host = layer.host_bytes(2, cache.max_length, torch.float32) if offload else 0
        assert layer.host_memory_bytes() == expected_host


def test_too_little_free_memory_fails_before_prefill(monkeypatch):
    model = asynctls_hf.patch(tiny_qwen3(), CONFIG)
    monkeypatch.setattr(cache_module, "free_device_memory", lambda device: 4096)
    forwards = []
    model.model.register_forward_pre_hook(lambda *_: forwards.append(1))
    expected = r"2 sequence\(s\) of up to 74 tokens \(torch.float32\) needs .* GiB on cpu .* smaller batch"
    with pytest.raises(CacheMemoryError, match=expected):
        generate(model)
    assert not forwards


def test_enough_free_memory_generates(monkeypatch):
    model = asynctls_hf.patch(tiny_qwen3(), CONFIG)
    monkeypatch.setattr(cache_module, "free_device_memory", lambda device: 2**30)
    assert generate(model).sequences.shape == (2, 75)


@pytest.mark.parametrize("build", [tiny_qwen3, tiny_glm4_moe_lite])
def test_generate_plans_the_prefill_working_memory(monkeypatch, build):
    """The plan generate() checks includes the chunked prefill's working memory, one hidden state per row (the
    head reads the last token's logits only) and, for MLA, the prefill attention's keys and values expanded from
    the latent."""
    model = asynctls_hf.patch(build(), CONFIG)
    planned = []
    plan = AsyncTLSCache.plan_placement

    def recording_plan(cache, batch, dtype, devices, prefill_bytes=None):
        planned.append((cache.max_length, prefill_bytes))
        return plan(cache, batch, dtype, devices, prefill_bytes)

    monkeypatch.setattr(AsyncTLSCache, "plan_placement", recording_plan)
    generate(model)
    [(tokens, prefill_bytes)] = planned
    text = model.config
    per_chunk, last_hidden = prefill_working_bytes(
        text.hidden_size, text.intermediate_size, 2, tokens, CONFIG.prefill_chunk_size, torch.float32, 1
    )
    # On the CPU the prefill attention takes its masked form: two boolean masks and the float32 bias per chunk.
    attention = 2 * min(CONFIG.prefill_chunk_size, tokens) * tokens * (2 + 4)
    if build is tiny_glm4_moe_lite:
        widths = 2 * text.qk_nope_head_dim + text.qk_rope_head_dim + 2 * text.v_head_dim
        attention += 2 * tokens * text.num_attention_heads * widths * 4
    assert last_hidden == 2 * text.hidden_size * 4
    assert prefill_bytes == {torch.device("cpu"): per_chunk + attention + last_hidden}
