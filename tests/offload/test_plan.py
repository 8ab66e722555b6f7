"""The offload memory planner: decisions and messages at full-model sizes, and agreement with the cache's storage."""

from __future__ import annotations

import pytest
import torch

from asynctls_hf.cache import AsyncTLSLayer
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.offload import LayerFootprint, OffloadMemoryError, available_memory, label_bytes_per_token, plan_memory
from asynctls_hf.offload.plan import GIB, host_available_memory, resident_device_bytes

QWEN3_8B = LayerFootprint(num_groups=8, key_width=128, value_width=128, dtype_bytes=2, label_bytes=24)
GLM_FLASH = LayerFootprint(
    num_groups=1, key_width=576, value_width=512, dtype_bytes=2, label_bytes=72, values_in_keys=True
)
CONTEXT = 96 * 1024


def plan_qwen3(device_free_gib: float, host_free_gib: float, offload="auto", batch: int = 8, top_blocks: int = 128):
    return plan_memory(
        QWEN3_8B, 36, batch, CONTEXT, block_size=64, top_blocks=top_blocks, window_tokens=16 + 64,
        offload=offload, device_free=int(device_free_gib * GIB), host_free=int(host_free_gib * GIB),
    )


def test_bytes_per_token_follow_the_geometry():
    assert label_bytes_per_token(32, 4, 2) == 24
    assert label_bytes_per_token(128, 8, 2) == 136
    assert label_bytes_per_token(32, 16, 2) == 72
    assert 36 * QWEN3_8B.kv_bytes_per_token == 147_456  # 147 KB per token
    assert 47 * GLM_FLASH.kv_bytes_per_token == 54_144  # 54 KB per token: the values are a view of the latent


def test_qwen3_8b_at_96k_batch_8_offloads_with_80_gib_and_stays_resident_with_140():
    offloaded = plan_qwen3(80, 500)
    assert offloaded.offload
    assert offloaded.resident_device_bytes > offloaded.device_usable
    assert 10 * GIB < offloaded.device_bytes < 25 * GIB
    assert 108 * GIB < offloaded.host_bytes < 110 * GIB
    resident = plan_qwen3(140, 500)
    assert not resident.offload and resident.host_bytes == 0
    assert resident.device_bytes == resident.resident_device_bytes
    assert 114 * GIB < resident.device_bytes < resident.device_usable
    assert plan_qwen3(140, 500, offload=True).offload


def test_resident_cache_too_large_for_the_gpu_names_offload():
    expected = (
        r"8 sequence\(s\) of up to 98304 tokens needs 114\.\d GiB on the GPU, where 80\.0 GiB is free .* "
        r"use offload=True or offload='auto'"
    )
    with pytest.raises(OffloadMemoryError, match=expected):
        plan_qwen3(80, 500, offload=False)


def test_too_little_host_memory_fails_with_what_is_needed_and_available():
    expected = (
        r"needs 108\.\d GiB of pinned host memory, where 64\.0 GiB is available and 57\.6 GiB usable: "
        r"use a smaller batch or fewer max_new_tokens$"
    )
    with pytest.raises(OffloadMemoryError, match=expected):
        plan_qwen3(80, 64)
    with pytest.raises(OffloadMemoryError, match="or offload=False"):
        plan_qwen3(140, 64, offload=True)


def test_offloaded_cache_too_large_for_the_gpu_names_top_blocks():
    with pytest.raises(OffloadMemoryError, match="offloaded .* smaller top_blocks"):
        plan_qwen3(16, 500, offload=True, top_blocks=1024)


@pytest.mark.parametrize(
    ("footprint", "key_width", "value_width", "values_in_keys"),
    [(QWEN3_8B, 128, 128, False), (GLM_FLASH, 576, 512, True)],
)
def test_resident_bytes_match_the_cache_layer_storage(footprint, key_width, value_width, values_in_keys):
    config = AsyncTLSConfig(block_size=64, top_blocks=8, token_budget=256)
    layer = AsyncTLSLayer(config, footprint.num_groups, key_width, value_width, values_in_keys)
    label_channels = config.label_channels_for(key_width)
    assert footprint.label_bytes == label_bytes_per_token(label_channels, config.label_bits, 2)
    batch, length = 3, 1000
    chosen_channels_bytes = batch * footprint.num_groups * label_channels * 8
    expected = layer.storage_bytes(batch, length, torch.bfloat16) - chosen_channels_bytes
    assert resident_device_bytes(footprint, 1, batch, length, block_size=64) == expected


def test_host_memory_is_read_from_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    300 kB\n")
    assert host_available_memory(str(meminfo)) == 300 * 1024
    meminfo.write_text("MemTotal:       1000 kB\n")
    with pytest.raises(OSError, match="no MemAvailable"):
        host_available_memory(str(meminfo))
    device_free, host_free = available_memory(torch.device("cpu"))
    assert device_free == host_free > 0
