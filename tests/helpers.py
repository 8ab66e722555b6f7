"""Tiny models and left-padded batches shared by the tests."""

from __future__ import annotations

import torch
from transformers import (
    DeepseekV3Config,
    DeepseekV3ForCausalLM,
    Glm4MoeLiteConfig,
    Glm4MoeLiteForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3Model,
)

import asynctls_hf
from asynctls_hf import AsyncTLSCache
from asynctls_hf.api import cache_argument, returned_cache

VOCAB = 97
PAD = 0
# transformers renamed `past_key_values` to `cache` (5.2x); pass a cache under the name this version takes.
CACHE_KWARG = cache_argument(Qwen3Model)


def tiny_qwen3(seed: int = 0, **config_overrides) -> Qwen3ForCausalLM:
    """A 2-layer Qwen3 (4 query heads, 2 KV heads of width 16) in float32, eval mode."""
    torch.manual_seed(seed)
    settings = dict(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=4096,
        pad_token_id=PAD,
        eos_token_id=None,
        bos_token_id=None,
    )
    settings.update(config_overrides)
    return Qwen3ForCausalLM(Qwen3Config(**settings)).eval()


# A tiny multi-head latent attention: 4 heads over a latent of 32 plus a roped key of 8 (keys 40 wide, values 32),
# MoE from the second layer on.
_TINY_MLA = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    moe_intermediate_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=4,
    n_routed_experts=4,
    num_experts_per_tok=2,
    kv_lora_rank=32,
    q_lora_rank=None,
    qk_rope_head_dim=8,
    qk_nope_head_dim=16,
    v_head_dim=16,
    max_position_embeddings=4096,
    pad_token_id=PAD,
    eos_token_id=None,
    bos_token_id=None,
)


def tiny_glm4_moe_lite(seed: int = 0, **config_overrides) -> Glm4MoeLiteForCausalLM:
    """A 3-layer GLM-4.7-Flash-style model (MLA, _TINY_MLA) in float32, eval mode."""
    torch.manual_seed(seed)
    return Glm4MoeLiteForCausalLM(Glm4MoeLiteConfig(**{**_TINY_MLA, **config_overrides})).eval()


def tiny_deepseek_v3(seed: int = 0, **config_overrides) -> DeepseekV3ForCausalLM:
    """A 3-layer DeepSeek-V3-style model (MLA, _TINY_MLA, one expert group) in float32, eval mode."""
    torch.manual_seed(seed)
    settings = {**_TINY_MLA, "n_group": 1, "topk_group": 1, "first_k_dense_replace": 1, **config_overrides}
    return DeepseekV3ForCausalLM(DeepseekV3Config(**settings)).eval()


def left_padded_batch(lengths: list[int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask [len(lengths), max(lengths)] with rows left-padded to the longest."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    input_ids = torch.full((len(lengths), width), PAD, dtype=torch.long)
    attention_mask = torch.zeros((len(lengths), width), dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, width - length :] = torch.randint(1, VOCAB, (length,), generator=generator)
        attention_mask[row, width - length :] = 1
    return input_ids, attention_mask


def greedy(model, input_ids, attention_mask, steps: int, **kwargs):
    """generate() with greedy decoding, returning sequences, per-step scores and the cache."""
    return model.generate(
        input_ids=input_ids,
        attention_mask=attention_mask,
        max_new_tokens=steps,
        min_new_tokens=steps,
        do_sample=False,
        output_scores=True,
        return_dict_in_generate=True,
        pad_token_id=PAD,
        **kwargs,
    )


def assert_same_generation(reference, output, atol: float = 2e-5):
    """Greedy generate() outputs agree: identical tokens, logits equal to float32 rounding at every step."""
    assert torch.equal(reference.sequences, output.sequences)
    for step, (expected, got) in enumerate(zip(reference.scores, output.scores, strict=True)):
        torch.testing.assert_close(got, expected, atol=atol, rtol=0, msg=f"logits differ at step {step}")


def assert_same_scores_exactly(reference, output):
    """Greedy generate() outputs are bit-identical (tokens and every step's logits)."""
    assert torch.equal(reference.sequences, output.sequences)
    for expected, got in zip(reference.scores, output.scores, strict=True):
        assert torch.equal(got, expected)


def is_unpatched(model) -> bool:
    """No trace of asynctls_hf.patch left on the model or its attention modules."""
    return (
        not hasattr(model, "_asynctls_state")
        and "forward" not in vars(model)
        and all("forward" not in vars(layer.self_attn) for layer in model.model.layers)
    )


def assert_chunked_forward_equals_full(model, lengths: list[int], ends: tuple[int, ...], atol: float, **config):
    """Feeding a left-padded batch in chunks ending at `ends` through the patched model, with the cache returned
    by each call passed to the next, gives the unpatched model's logits for one full forward (real tokens)."""
    input_ids, attention_mask = (tensor.to(model.device) for tensor in left_padded_batch(lengths))
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        full = model(input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
        asynctls_hf.patch(model, **config)
        cache, pieces, begin = None, [], 0
        for end in (*ends, input_ids.shape[1]):
            output = model(
                input_ids[:, begin:end],
                attention_mask=attention_mask[:, :end],
                position_ids=position_ids[:, begin:end],
                use_cache=True,
                **({} if cache is None else {CACHE_KWARG: cache}),
            )
            cache = returned_cache(output)
            assert isinstance(cache, AsyncTLSCache)
            pieces.append(output.logits)
            begin = end
    real = attention_mask.bool()
    torch.testing.assert_close(torch.cat(pieces, dim=1)[real], full[real], atol=atol, rtol=0)


