"""The placement planner at full-model sizes: decisions, the bytes behind them, and the messages."""

from __future__ import annotations

import pytest
import torch

from asynctls_hf.cache import AsyncTLSCache, CacheMemoryError, LayerGeometry
from asynctls_hf.cache import cache as cache_module
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.offload.plan import GIB, host_available_memory
from asynctls_hf.prefill import prefill_working_bytes

QWEN3_8B = [LayerGeometry(8, 128, 128)] * 36
GLM_FLASH = [LayerGeometry(1, 576, 512, values_in_keys=True)] * 47
CONTEXT = 96 * 1024
GPU = torch.device("cuda:0")


def plan(
    monkeypatch, device_free_gib: float, host_free_gib: float, offload="auto", batch: int = 8, top_blocks: int = 128,
    geometry=QWEN3_8B,
):
    monkeypatch.setattr(cache_module, "free_device_memory", lambda device: int(device_free_gib * GIB))
    monkeypatch.setattr(cache_module, "host_available_memory", lambda: int(host_free_gib * GIB))
    config = AsyncTLSConfig(top_blocks=top_blocks, offload=offload)
    cache = AsyncTLSCache(geometry, config, max_length=CONTEXT)
    placement = cache.plan_placement(batch, torch.bfloat16, [GPU] * len(geometry))
    assert all(layer.offload == placement.offload for layer in cache.layers)
    return placement


def test_prefill_working_memory_is_counted_before_prefill(monkeypatch):
    """Qwen3-8B at 96k, batch 8: the resident cache (114.8 GiB) alone fit 123 GiB free, but with the chunked
    prefill's working memory (a chunk's MLP, the masked attention's masks, the prompt's 6 GiB of last hidden states)
    it ran out of GPU memory in the prefill on the H200 (2026-11-29); the check refuses it before any allocation.
    (With the per-row flash attention, which builds no mask, it fits and ran the same day.)"""
    per_chunk, hidden_states = prefill_working_bytes(4096, 12288, 8, CONTEXT, 2048, torch.bfloat16)
    assert hidden_states == 6 * GIB
    per_chunk += 8 * 2048 * CONTEXT * (2 + 2)  # the masked prefill attention's masks and bias (6 GiB)
    monkeypatch.setattr(cache_module, "free_device_memory", lambda device: 123 * GIB)
    monkeypatch.setattr(cache_module, "host_available_memory", lambda: 500 * GIB)
    cache = AsyncTLSCache(QWEN3_8B, AsyncTLSConfig(offload=False), max_length=CONTEXT)
    assert not cache.plan_placement(8, torch.bfloat16, [GPU] * 36).offload
    with pytest.raises(CacheMemoryError, match=r"prefill's working memory.* smaller prefill_chunk_size"):
        cache.plan_placement(8, torch.bfloat16, [GPU] * 36, {GPU: per_chunk + hidden_states})


def test_qwen3_8b_at_96k_batch_8_offloads_with_80_gib_and_stays_resident_with_140(monkeypatch):
    offloaded = plan(monkeypatch, 80, 500)
    assert offloaded.offload
    assert 5 * GIB < offloaded.device_bytes[GPU] < 25 * GIB, "labels, summaries, window and 128 block slots"
    assert offloaded.host_bytes == 36 * 8 * CONTEXT * 8 * 256 * 2, "the K/V: 147 KB per token, nothing else"
    resident = plan(monkeypatch, 140, 500)
    assert not resident.offload and resident.host_bytes == 0
    assert 114 * GIB < resident.device_bytes[GPU] < 126 * GIB
    assert plan(monkeypatch, 140, 500, offload=True).offload


def test_glm_flash_values_inside_the_latent_are_stored_once(monkeypatch):
    offloaded = plan(monkeypatch, 12, 500, offload=True, geometry=GLM_FLASH)
    kv_bytes = 47 * 8 * CONTEXT * 576 * 2  # 54 KB per token and row: the values are a view of the latent
    assert kv_bytes <= offloaded.host_bytes < kv_bytes + GIB


def test_resident_cache_too_large_for_the_gpu_names_offload(monkeypatch):
    expected = (
        r"8 sequence\(s\) of up to 98304 tokens \(torch.bfloat16\) needs 11\d\.\d\d GiB on cuda:0 .* but only "
        r"80\.00 GiB is free: .* use offload=True or offload='auto'"
    )
    with pytest.raises(CacheMemoryError, match=expected):
        plan(monkeypatch, 80, 500, offload=False)


def test_too_little_host_memory_fails_with_what_is_needed_and_available(monkeypatch):
    expected = (
        r"needs 10\d\.\d\d GiB of pinned host memory, where 64\.00 GiB is available and 57\.60 GiB usable: "
        r"use a smaller batch or fewer max_new_tokens$"
    )
    with pytest.raises(CacheMemoryError, match=expected):
        plan(monkeypatch, 80, 64)
    with pytest.raises(CacheMemoryError, match="or offload=False"):
        plan(monkeypatch, 140, 64, offload=True)


def test_offloaded_cache_too_large_for_the_gpu_names_top_blocks(monkeypatch):
    with pytest.raises(CacheMemoryError, match="offloaded .* smaller top_blocks"):
        plan(monkeypatch, 16, 500, offload=True, top_blocks=1024)


def test_host_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    300 kB\n")
    assert host_available_memory(str(meminfo)) == 300 * 1024
    meminfo.write_text("MemTotal:       1000 kB\n")
    with pytest.raises(OSError, match="no MemAvailable"):
        host_available_memory(str(meminfo))
    assert host_available_memory() > 0


def test_layers_on_two_devices_are_planned_and_checked_per_device(monkeypatch):
    """device_map placements: each device holds its own layers' cache, and the device that lacks room is named."""
    gpus = [torch.device("cuda:0")] * 20 + [torch.device("cuda:1")] * 16
    free = {torch.device("cuda:0"): 140 * GIB, torch.device("cuda:1"): 40 * GIB}
    monkeypatch.setattr(cache_module, "free_device_memory", lambda device: free[device])
    monkeypatch.setattr(cache_module, "host_available_memory", lambda: 500 * GIB)
    cache = AsyncTLSCache(QWEN3_8B, AsyncTLSConfig(offload=False), max_length=CONTEXT)
    with pytest.raises(CacheMemoryError, match=r"needs 5\d\.\d\d GiB on cuda:1 .* but only 40\.00 GiB is free"):
        cache.plan_placement(8, torch.bfloat16, gpus)
    cache = AsyncTLSCache(QWEN3_8B, AsyncTLSConfig(offload="auto"), max_length=CONTEXT)
    placement = cache.plan_placement(8, torch.bfloat16, gpus)
    assert placement.offload, "one device short of room offloads the cache"
    context_copy = 2 * 8 * 8 * CONTEXT * 256 * 2  # one offloaded layer's context read for prefill attention
    per_layer = (placement.device_bytes[torch.device("cuda:0")] - context_copy) / 20
    assert placement.device_bytes[torch.device("cuda:1")] == 16 * per_layer + context_copy
