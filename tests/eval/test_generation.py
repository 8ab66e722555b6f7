"""The eval's loading: grouped-query SDPA with repeated key/value heads attends as stock SDPA does."""

from __future__ import annotations

import pytest
from helpers import assert_same_generation, greedy, left_padded_batch, tiny_qwen3

import asynctls_hf
from asynctls_hf.eval.generation import (
    REPEATED_KV_SDPA,
    greedy_generate,
    load_model,
    needs_repeated_kv,
    register_repeated_kv_sdpa,
)


@pytest.mark.parametrize("lengths", [[37], [37, 21, 30]], ids=["one-row", "left-padded"])
def test_repeated_kv_sdpa_generates_as_stock_sdpa(lengths):
    """One unpadded row (no mask: SDPA's causal flag) and a left-padded batch (a mask), 6 greedy steps; patched
    with a budget that covers the prompt, the repeated-heads model still generates as the stock one."""
    stock = tiny_qwen3()
    repeated = tiny_qwen3()
    repeated.set_attn_implementation(register_repeated_kv_sdpa())
    assert repeated.config._attn_implementation == REPEATED_KV_SDPA
    assert stock.config._attn_implementation == "sdpa"
    input_ids, attention_mask = left_padded_batch(lengths, seed=3)
    reference = greedy(stock, input_ids, attention_mask, 6)
    assert_same_generation(reference, greedy(repeated, input_ids, attention_mask, 6))
    asynctls_hf.patch(repeated, token_budget=512, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=64)
    assert_same_generation(reference, greedy(repeated, input_ids, attention_mask, 6))


def test_stock_attention_is_kept_on_the_cpu(tiny_checkpoint):
    model, _ = load_model(tiny_checkpoint, device="cpu", dtype="float32")
    assert not needs_repeated_kv(model)
    assert model.config._attn_implementation == "sdpa"


@pytest.mark.gpu
def test_float32_grouped_query_model_on_cuda_attends_with_repeated_heads(tiny_checkpoint):
    """load_model picks the repeated heads for float32 on CUDA, and greedy text equals stock SDPA's."""
    model, tokenizer = load_model(tiny_checkpoint, device="cuda", dtype="float32")
    assert model.config._attn_implementation == REPEATED_KV_SDPA
    prompt = " ".join(["the quick fox"] * 40)
    repeated_text, _ = greedy_generate(model, tokenizer, prompt, max_new_tokens=8)
    model.set_attn_implementation("sdpa")
    stock_text, _ = greedy_generate(model, tokenizer, prompt, max_new_tokens=8)
    assert repeated_text == stock_text
    bf16, _ = load_model(tiny_checkpoint, device="cuda", dtype="bfloat16")
    assert bf16.config._attn_implementation == "sdpa"
