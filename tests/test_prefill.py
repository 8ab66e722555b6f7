"""Chunked prefill: a prompt longer than prefill_chunk_size runs through the whole model one chunk at a time, with
the same result as one forward over it."""

import pytest
import torch
from helpers import (
    assert_same_generation,
    assert_same_scores_exactly,
    greedy,
    left_padded_batch,
    returned_cache,
    tiny_glm4_moe_lite,
    tiny_qwen3,
)

import asynctls_hf
from asynctls_hf.cache import cache as cache_module
from asynctls_hf.offload.plan import DEVICE_RESERVE_MIN_BYTES
from asynctls_hf.ops import prefill_attention

LENGTHS = [150, 97, 131]  # left-padded, odd sizes
BUDGET_COVERS = dict(token_budget=512, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=64)
SPARSE = dict(token_budget=48, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=8)
OFFLOADED = dict(SPARSE, offload=True, prefetch_lag=0)  # exact: the same result as resident
MODELS = {"qwen3": tiny_qwen3, "glm4_moe_lite": tiny_glm4_moe_lite}


def mlp_token_counts(model) -> list[int]:
    """Records how many tokens per row each call of the first decoder layer's MLP sees (filled as the model runs)."""
    counts = []
    model.model.layers[0].mlp.register_forward_hook(lambda module, args, output: counts.append(args[0].shape[1]))
    return counts


@pytest.mark.parametrize("family", MODELS)
@pytest.mark.parametrize(
    "settings, chunked_settings",
    [(BUDGET_COVERS, BUDGET_COVERS), (SPARSE, SPARSE), (SPARSE, OFFLOADED)],
    ids=["budget-covers", "sparse", "sparse-offloaded"],
)
def test_generation_in_chunks_equals_one_prefill(family, settings, chunked_settings):
    """Chunks of 33 tokens give the tokens and logits of one prefill (resident); the label channels chosen from
    the whole prompt, the offloaded store's keys labelled after the last chunk."""
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    model = MODELS[family]()
    with torch.no_grad():
        asynctls_hf.patch(model, prefill_chunk_size=4096, **settings)
        whole = greedy(model, input_ids, attention_mask, steps=6)
        asynctls_hf.patch(model, prefill_chunk_size=33, **chunked_settings)
        counts = mlp_token_counts(model)
        chunked = greedy(model, input_ids, attention_mask, steps=6)
    assert counts == [33, 33, 33, 33, 18, 1, 1, 1, 1, 1], "prefill in chunks of 33, then one token per step"
    assert_same_generation(whole, chunked, atol=1e-4)


def test_forward_returns_every_token_and_layer_state_of_the_prompt():
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    model = tiny_qwen3()
    with torch.no_grad():
        asynctls_hf.patch(model, prefill_chunk_size=4096, **BUDGET_COVERS)
        whole = model(input_ids, attention_mask=attention_mask, output_hidden_states=True)
        asynctls_hf.patch(model, prefill_chunk_size=40, **BUDGET_COVERS)
        chunked = model(input_ids, attention_mask=attention_mask, output_hidden_states=True)
    real = attention_mask.bool()
    assert chunked.logits.shape == whole.logits.shape
    torch.testing.assert_close(chunked.logits[real], whole.logits[real], atol=2e-5, rtol=0)
    assert len(chunked.hidden_states) == len(whole.hidden_states)
    for got, expected in zip(chunked.hidden_states, whole.hidden_states, strict=True):
        torch.testing.assert_close(got[real], expected[real], atol=2e-5, rtol=0)


@pytest.mark.parametrize("family", MODELS)
def test_a_call_for_the_last_logits_gets_only_their_hidden_states(family):
    """generate() asks for the last token's logits (logits_to_keep=1): the chunked prefill then returns [B, 1, H]
    instead of every prompt position's hidden state; logits_to_keep=k gives the whole prefill's last k logits."""
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    model = MODELS[family]()
    returned = []
    model.model.register_forward_hook(lambda module, args, output: returned.append(output.last_hidden_state.shape[1]))
    with torch.no_grad():
        asynctls_hf.patch(model, prefill_chunk_size=40, **BUDGET_COVERS)
        greedy(model, input_ids, attention_mask, steps=2)
        assert returned == [1, 1]
        whole = model(input_ids, attention_mask=attention_mask).logits
        last = model(input_ids, attention_mask=attention_mask, logits_to_keep=3).logits
    assert returned[2:] == [150, 3]
    torch.testing.assert_close(last, whole[:, -3:], atol=2e-5, rtol=0)


def test_unpatch_restores_the_decoder_and_model_forward():
    model = tiny_qwen3()
    asynctls_hf.patch(model, prefill_chunk_size=16)
    assert "forward" in vars(model.model) and "forward" in vars(model)
    asynctls_hf.unpatch(model)
    assert "forward" not in vars(model.model) and "forward" not in vars(model)


@pytest.mark.gpu
@pytest.mark.parametrize("family", MODELS)
@pytest.mark.parametrize("prompt_on_gpu", [True, False], ids=["prompt-held", "prompt-read-back"])
def test_chunked_prefill_on_the_gpu_offloaded_equals_one_prefill_resident(family, prompt_on_gpu, monkeypatch):
    """The same on CUDA: Triton kernels, the pinned store written on the copy stream and read back by a kernel
    (no free memory beyond the plan) or the prompt held on the GPU, decode graphs."""
    input_ids, attention_mask = (tensor.cuda() for tensor in left_padded_batch(LENGTHS))
    model = MODELS[family]().cuda()
    with torch.no_grad():
        asynctls_hf.patch(model, prefill_chunk_size=4096, **SPARSE)
        whole = greedy(model, input_ids, attention_mask, steps=6)
        if not prompt_on_gpu:  # no memory to spare beyond the plan: no room to hold the prompt
            monkeypatch.setattr(cache_module, "device_usable", lambda free: 0)
        asynctls_hf.patch(model, prefill_chunk_size=33, **OFFLOADED)
        chunked = greedy(model, input_ids, attention_mask, steps=6)
    assert_same_generation(whole, chunked, atol=1e-4)
    assert (returned_cache(chunked).stats()["context_read_bytes"] == 0) == prompt_on_gpu


@pytest.mark.parametrize("family", MODELS)
def test_the_mask_free_per_row_prefill_attention_gives_the_same_generation(family, monkeypatch):
    """The per-row lower-right causal form (what CUDA runs where flash takes the shapes), forced on the CPU, in
    a chunked, left-padded prefill: the generation of the masked one-prefill form."""
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    model = MODELS[family]()
    with torch.no_grad():
        asynctls_hf.patch(model, prefill_chunk_size=4096, **SPARSE)
        masked = greedy(model, input_ids, attention_mask, steps=6)
        monkeypatch.setattr(prefill_attention, "flash_takes", lambda *shapes: True)
        asynctls_hf.patch(model, prefill_chunk_size=33, **SPARSE)
        per_row = greedy(model, input_ids, attention_mask, steps=6)
    assert_same_generation(masked, per_row, atol=1e-4)


@pytest.mark.parametrize("family", MODELS)
def test_offloaded_layers_keep_the_prompt_on_the_device_as_far_as_free_memory_goes(family, monkeypatch):
    """During a chunked prefill offloaded layers keep the prompt's K/V on their device too, in layer order, while
    the free memory beyond the planned placement (less its reserve) lasts: those read nothing back from the host
    store for prefill attention. The generation is the same whichever layers hold it."""
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    model = asynctls_hf.patch(MODELS[family](), prefill_chunk_size=33, **OFFLOADED)
    with torch.no_grad():
        reading = greedy(model, input_ids, attention_mask, steps=6)  # on the CPU no free memory is known: none held
    cache = returned_cache(reading)
    layers = len(cache.layers)
    read_by_all = cache.stats()["context_read_bytes"]
    assert read_by_all > 0
    placement, batch, dtype, _ = cache.planned
    planned = placement.device_bytes[torch.device("cpu")]
    per_layer = cache.layers[0].kv_bytes(batch, input_ids.shape[1], dtype)
    for held_layers in (1, layers):
        free = planned + int((held_layers + 0.5) * per_layer) + DEVICE_RESERVE_MIN_BYTES
        monkeypatch.setattr(cache_module, "free_device_memory", lambda device, free=free: free)
        with torch.no_grad():
            holding = greedy(model, input_ids, attention_mask, steps=6)
        assert returned_cache(holding).stats()["context_read_bytes"] == read_by_all * (layers - held_layers) // layers
        assert_same_scores_exactly(reading, holding)


@pytest.mark.parametrize("settings", [SPARSE, OFFLOADED], ids=["resident", "offloaded"])
def test_beam_search_after_a_chunked_prefill(settings):
    """generate() expands the prompt to batch * beams before the prefill; chunked, it gives the same beams."""
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    model = tiny_qwen3()
    with torch.no_grad():
        asynctls_hf.patch(model, prefill_chunk_size=4096, **settings)
        whole = greedy(model, input_ids, attention_mask, steps=5, num_beams=2)
        asynctls_hf.patch(model, prefill_chunk_size=33, **settings)
        chunked = greedy(model, input_ids, attention_mask, steps=5, num_beams=2)
    assert torch.equal(whole.sequences, chunked.sequences)
