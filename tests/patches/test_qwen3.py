"""Qwen3: the patched model against the unpatched one, fallbacks, and patch/unpatch behaviour."""

import pytest
import torch
from accelerate.hooks import ModelHook, add_hook_to_module
from helpers import (
    CACHE_KWARG,
    PAD,
    assert_chunked_forward_equals_full,
    assert_same_generation,
    assert_same_scores_exactly,
    greedy,
    is_unpatched,
    left_padded_batch,
    returned_cache,
    tiny_qwen3,
)
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM

import asynctls_hf
from asynctls_hf import AsyncTLSCache, AsyncTLSConfig, UnsupportedModelError

LENGTHS = [37, 25, 11]
DENSE = dict(token_budget=512, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=64)
SPARSE = dict(token_budget=24, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=32)
FLOAT32_ATOL = 2e-5


def test_dense_equivalence_left_padded_greedy_and_unpatch_restores():
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    reference = greedy(model, input_ids, attention_mask, 40)

    asynctls_hf.patch(model, **DENSE)
    output = greedy(model, input_ids, attention_mask, 40)
    assert isinstance(returned_cache(output), AsyncTLSCache)
    assert_same_generation(reference, output)
    stats = returned_cache(output).stats()
    assert stats["sparse_layer_steps"] == 0 and stats["dense_layer_steps"] == 39 * 2

    asynctls_hf.unpatch(model)
    assert is_unpatched(model)
    assert_same_scores_exactly(reference, greedy(model, input_ids, attention_mask, 40))


def test_sparse_decoding_runs_within_budget_and_reports_attended_tokens():
    model = asynctls_hf.patch(tiny_qwen3(), **SPARSE)
    input_ids, attention_mask = left_padded_batch([60, 45, 30])
    output = greedy(model, input_ids, attention_mask, 12)
    stats = returned_cache(output).stats()
    assert stats["sparse_layer_steps"] == 11 * 2 and stats["dense_layer_steps"] == 0
    assert 0 < stats["attended_tokens"] <= SPARSE["token_budget"]
    assert stats["h2d_bytes"] == 0 and stats["hit_rate"] == 1.0
    assert output.sequences.shape == (3, 60 + 12)


def test_sampled_generation_matches_unpatched_with_same_seed():
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    kwargs = dict(max_new_tokens=20, do_sample=True, top_k=20, pad_token_id=PAD, attention_mask=attention_mask)
    torch.manual_seed(123)
    reference = model.generate(input_ids, **kwargs)
    with asynctls_hf.patched(model, **DENSE):
        torch.manual_seed(123)
        output = model.generate(input_ids, **kwargs)
    assert torch.equal(output, reference)
    assert is_unpatched(model)


def test_beam_search_matches_unpatched():
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch([19, 13])
    kwargs = dict(max_new_tokens=12, num_beams=3, do_sample=False, pad_token_id=PAD, attention_mask=attention_mask)
    reference = model.generate(input_ids, **kwargs)
    with asynctls_hf.patched(model, **DENSE):
        output = model.generate(input_ids, **kwargs)
    assert torch.equal(output, reference)


def test_beam_search_runs_on_sparse_path():
    model = asynctls_hf.patch(tiny_qwen3(), **SPARSE)
    input_ids, attention_mask = left_padded_batch([50, 40])
    output = model.generate(
        input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=3, do_sample=False, pad_token_id=PAD
    )
    assert output.shape == (2, 58)


def test_continuing_generation_from_returned_cache():
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    reference = greedy(model, input_ids, attention_mask, 30)

    asynctls_hf.patch(model, **DENSE)
    first = greedy(model, input_ids, attention_mask, 15)
    cache = returned_cache(first)
    assert cache.get_seq_length() == input_ids.shape[1] + 14
    mask = torch.cat([attention_mask, torch.ones(3, 15, dtype=torch.long)], dim=1)
    second = greedy(model, first.sequences, mask, 15, **{CACHE_KWARG: cache})
    assert torch.equal(second.sequences, reference.sequences)


def test_chunked_cached_forward_equals_one_full_forward():
    assert_chunked_forward_equals_full(tiny_qwen3(), LENGTHS, (16, 17, 18, 30), atol=FLOAT32_ATOL, **DENSE)


def test_static_cache_and_use_cache_false_fall_back_to_stock_attention():
    model = tiny_qwen3()
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    static_reference = greedy(model, input_ids, attention_mask, 8, cache_implementation="static")
    no_cache_reference = greedy(model, input_ids, attention_mask, 8, use_cache=False)
    with asynctls_hf.patched(model, **SPARSE):
        static = greedy(model, input_ids, attention_mask, 8, cache_implementation="static")
        no_cache = greedy(model, input_ids, attention_mask, 8, use_cache=False)
        user_cache = DynamicCache(config=model.config)
        dynamic = greedy(model, input_ids, attention_mask, 8, **{CACHE_KWARG: user_cache})
    assert torch.equal(static.sequences, static_reference.sequences)
    assert torch.equal(no_cache.sequences, no_cache_reference.sequences)
    assert returned_cache(dynamic) is user_cache


def test_plain_forward_builds_asynctls_cache():
    model = asynctls_hf.patch(tiny_qwen3(), **DENSE)
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    with torch.no_grad():
        output = model(input_ids, attention_mask=attention_mask)
        without_cache = model(input_ids, attention_mask=attention_mask, use_cache=False)
    assert isinstance(returned_cache(output), AsyncTLSCache)
    assert returned_cache(without_cache) is None


def test_right_padding_is_rejected_clearly():
    model = asynctls_hf.patch(tiny_qwen3(), **DENSE)
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    with pytest.raises(ValueError, match="left padding"):
        model.generate(input_ids.flip(1), attention_mask=attention_mask.flip(1), max_new_tokens=2, pad_token_id=PAD)


def test_patching_again_replaces_config_and_patched_restores_it():
    model = asynctls_hf.patch(tiny_qwen3(), **DENSE)
    asynctls_hf.patch(model, token_budget=256)
    assert model._asynctls_state.config == AsyncTLSConfig(token_budget=256)
    with asynctls_hf.patched(model, **SPARSE):
        assert model._asynctls_state.config == AsyncTLSConfig(**SPARSE)
    assert model._asynctls_state.config == AsyncTLSConfig(token_budget=256)
    asynctls_hf.unpatch(model)
    assert is_unpatched(model)


def test_patched_restores_model_when_the_block_raises():
    model = tiny_qwen3()
    with pytest.raises(RuntimeError, match="boom"):
        with asynctls_hf.patched(model, **DENSE):
            raise RuntimeError("boom")
    assert is_unpatched(model)


def test_accelerate_hooked_modules_are_patched_through_old_forward():
    model = tiny_qwen3()
    for layer in model.model.layers:
        add_hook_to_module(layer.self_attn, ModelHook())
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    reference = greedy(model, input_ids, attention_mask, 10)
    originals = [layer.self_attn._old_forward for layer in model.model.layers]
    with asynctls_hf.patched(model, **DENSE):
        assert all(
            layer.self_attn._old_forward is not old for layer, old in zip(model.model.layers, originals, strict=True)
        )
        output = greedy(model, input_ids, attention_mask, 10)
        assert isinstance(returned_cache(output), AsyncTLSCache)
    assert_same_generation(reference, output)
    assert all(layer.self_attn._old_forward is old for layer, old in zip(model.model.layers, originals, strict=True))


def test_unsupported_model_type_names_supported_types():
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2)
    )
    with pytest.raises(UnsupportedModelError, match="'llama'.*qwen3"):
        asynctls_hf.patch(model)
    assert not hasattr(model, "_asynctls_state")
    assert issubclass(UnsupportedModelError, ValueError)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("block_size", 3, "block_size"),
        ("block_size", 0, "block_size"),
        ("top_blocks", 0, "top_blocks"),
        ("token_budget", -1, "token_budget"),
        ("label_bits", 3, "label_bits"),
        ("label_channels", 0, "label_channels"),
        ("label_channels", 64, "label_channels"),
        ("sink_tokens", 600, "sink_tokens"),
        ("local_tokens", -2, "local_tokens"),
        ("backend", "cuda", "backend"),
        ("offload", "sometimes", "offload"),
        ("prefetch_lag", 2, "prefetch_lag"),
        ("prefetch_successors", -1, "prefetch_successors"),
        ("offload_granularity", "page", "offload_granularity"),
        ("prefill_chunk_size", 0, "prefill_chunk_size"),
        ("no_such_option", 1, "no_such_option"),
    ],
)
def test_bad_config_values_leave_model_unpatched(option, value, message):
    model = tiny_qwen3()
    with pytest.raises(ValueError, match=message):
        asynctls_hf.patch(model, **{**DENSE, option: value})
    assert is_unpatched(model)


def test_successors_that_do_not_fit_the_token_slots_are_refused():
    """Offloaded by tokens with lag 1, each step's picks and the tokens after them must fit the token slots."""
    model = tiny_qwen3()
    settings = dict(token_budget=48, sink_tokens=4, local_tokens=8, block_size=16, top_blocks=4, offload=True,
                    prefetch_lag=1)
    with pytest.raises(ValueError, match="36 selected tokens and their 1 successors .* lower prefetch_successors"):
        asynctls_hf.patch(model, **settings)
    assert is_unpatched(model)
    asynctls_hf.patch(model, **settings, prefetch_successors=0)  # the picks alone fit
    asynctls_hf.patch(model, **{**settings, "top_blocks": 5})  # 2 * 36 <= 5 * 16
    asynctls_hf.patch(model, **{**settings, "prefetch_lag": 0})  # exact: successors are not fetched


def test_unexpected_attention_module_is_rejected_and_nothing_is_patched():
    model = tiny_qwen3()
    del model.model.layers[1].self_attn.k_norm
    with pytest.raises(UnsupportedModelError, match="k_norm"):
        asynctls_hf.patch(model)
    assert is_unpatched(model)


def test_sliding_window_layers_are_rejected():
    model = tiny_qwen3(use_sliding_window=True, sliding_window=16, max_window_layers=0)
    with pytest.raises(UnsupportedModelError, match="sliding-window"):
        asynctls_hf.patch(model)
    assert is_unpatched(model)


def test_user_built_cache_is_used_and_preallocation_does_not_change_sparse_results():
    model = asynctls_hf.patch(tiny_qwen3(), **SPARSE)
    input_ids, attention_mask = left_padded_batch([60, 45, 30])
    preallocated = greedy(model, input_ids, attention_mask, 12)
    user_cache = AsyncTLSCache.for_model(model)
    grown = greedy(model, input_ids, attention_mask, 12, **{CACHE_KWARG: user_cache})
    assert returned_cache(grown) is user_cache and user_cache.max_length is None
    assert returned_cache(preallocated).max_length == 60 + 12 - 1
    assert_same_generation(preallocated, grown)
