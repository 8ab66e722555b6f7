"""AsyncTLSCache bookkeeping: storage growth, index maintenance, batch reordering, crop and reset."""

import pytest
import torch

from asynctls_hf import ops
from asynctls_hf.cache import AsyncTLSCache, LayerGeometry
from asynctls_hf.config import AsyncTLSConfig

GEOMETRY = [LayerGeometry(2, 16, 12), LayerGeometry(2, 16, 12)]
CONFIG = AsyncTLSConfig(block_size=8, top_blocks=8, token_budget=32, sink_tokens=2, local_tokens=4, label_channels=8)


def append_random(cache: AsyncTLSCache, tokens: int, generator: torch.Generator, batch: int = 3):
    for layer in cache.layers:
        keys = torch.randn(batch, 2, tokens, 16, generator=generator)
        values = torch.randn(batch, 2, tokens, 12, generator=generator)
        query = torch.randn(batch, 4, tokens, 16, generator=generator)
        layer.append(keys, values, query, cache.row_start)


def new_cache(pads=(0, 3, 9), max_length=None) -> AsyncTLSCache:
    cache = AsyncTLSCache(GEOMETRY, CONFIG, max_length=max_length)
    cache.observe_attention_mask(
        torch.tensor([[0] * pad + [1] * (20 - pad) for pad in pads]), len(pads), 20, torch.device("cpu")
    )
    return cache


def brute_force_summaries(layer, row_start):
    """Per block max/min over the real slots, zeros for blocks without one: [B, NG, n_blocks, Dk] twice."""
    length, block_size = layer.length, CONFIG.block_size
    n_blocks = -(-length // block_size)
    expected_max = torch.zeros(layer.keys.shape[0], layer.num_groups, n_blocks, layer.key_width)
    expected_min = torch.zeros_like(expected_max)
    for row in range(layer.keys.shape[0]):
        for block in range(n_blocks):
            begin = max(block * block_size, int(row_start[row]))
            end = min((block + 1) * block_size, length)
            if begin < end:
                expected_max[row, :, block] = layer.keys[row, :, begin:end].amax(1)
                expected_min[row, :, block] = layer.keys[row, :, begin:end].amin(1)
    return expected_max, expected_min


def assert_summaries_match(cache):
    for layer in cache.layers:
        expected_max, expected_min = brute_force_summaries(layer, cache.row_start)
        n_blocks = expected_max.shape[2]
        assert torch.equal(layer.block_max[:, :, :n_blocks], expected_max)
        assert torch.equal(layer.block_min[:, :, :n_blocks], expected_min)


def test_incremental_summaries_and_growth_past_capacity_keep_every_token():
    generator = torch.Generator().manual_seed(0)
    cache = new_cache()
    append_random(cache, 20, generator)
    snapshot = cache.layers[0].keys[:, :, :20].clone()
    for _ in range(7):
        append_random(cache, 1, generator)
        assert_summaries_match(cache)
    append_random(cache, 1100, generator)  # past the first allocation: storage grows
    layer = cache.layers[0]
    assert cache.get_seq_length() == 1127 and layer.capacity >= 1127 and layer.capacity % CONFIG.block_size == 0
    assert torch.equal(layer.keys[:, :, :20], snapshot)
    assert_summaries_match(cache)


def test_max_length_preallocates_once():
    cache = new_cache(max_length=45)
    append_random(cache, 20, torch.Generator().manual_seed(1))
    assert cache.layers[0].capacity == 48


def test_labels_match_their_definition():
    generator = torch.Generator().manual_seed(2)
    cache = new_cache()
    append_random(cache, 20, generator)
    layer = cache.layers[0]
    channel_keys = layer.keys[:, :, :20].gather(-1, layer.label_channels[:, :, None, :].expand(-1, -1, 20, -1))
    labels = ops.dequantize_labels(
        layer.label_codes[:, :, :20], layer.label_scale[:, :, :20], layer.label_zero[:, :, :20], CONFIG.label_bits
    )
    step = layer.label_scale[:, :, :20, None]
    assert ((labels - channel_keys).abs() <= step / 2 + 1e-5).all()
    assert layer.label_channels.shape == (3, 2, 8)


@pytest.mark.parametrize("bits", [4, 8, 16])
def test_label_quantization_round_trip(bits):
    values = torch.randn(5, 7, 12)
    codes, scale, zero = ops.quantize_labels(values, bits)
    restored = ops.dequantize_labels(codes, scale, zero, bits)
    assert codes.shape[-1] == (6 if bits == 4 else 12)
    assert ((restored - values).abs() <= scale[..., None] / 2 + 1e-5).all()


def test_reorder_select_and_repeat_rows():
    generator = torch.Generator().manual_seed(3)
    cache = new_cache()
    append_random(cache, 20, generator)
    layer = cache.layers[1]
    keys, channels = layer.keys.clone(), layer.label_channels.clone()
    cache.reorder_cache(torch.tensor([2, 2, 0]))
    assert torch.equal(layer.keys, keys[[2, 2, 0]]) and torch.equal(layer.label_channels, channels[[2, 2, 0]])
    assert cache.row_start.tolist() == [9, 9, 0]
    cache.batch_select_indices(torch.tensor([2]))
    assert torch.equal(layer.keys, keys[[0]]) and cache.row_start.tolist() == [0]
    cache.batch_repeat_interleave(2)
    assert torch.equal(layer.keys, keys[[0, 0]]) and cache.row_start.tolist() == [0, 0]
    assert_summaries_match(cache)


def test_crop_then_append_rebuilds_the_index():
    generator = torch.Generator().manual_seed(4)
    cache = new_cache()
    append_random(cache, 20, generator)
    append_random(cache, 13, generator)
    cache.crop(-6)
    assert cache.get_seq_length() == 27
    assert_summaries_match(cache)
    append_random(cache, 2, generator)
    assert_summaries_match(cache)
    cache.crop(10)
    assert cache.get_seq_length() == 10
    assert_summaries_match(cache)
    with pytest.raises(ValueError, match="crop"):
        cache.crop(-11)


def test_reset_forgets_tokens_padding_and_stats():
    cache = new_cache()
    append_random(cache, 20, torch.Generator().manual_seed(5))
    cache.record_decode(torch.ones(3, 2), dense=True)
    cache.reset()
    assert cache.get_seq_length() == 0 and cache.row_start is None
    assert cache.stats()["decode_layer_steps"] == 0
    assert cache.layers[0].label_channels is None


def test_mask_sizes_and_seq_length():
    cache = new_cache()
    append_random(cache, 20, torch.Generator().manual_seed(6))
    assert cache.get_seq_length() == 20
    assert cache.get_mask_sizes(1, 0) == (21, 0)
