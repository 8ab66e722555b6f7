"""Tiny models and left-padded batches shared by the tests."""

from __future__ import annotations

import inspect

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3Model

VOCAB = 97
PAD = 0
# transformers renamed `past_key_values` to `cache` (5.2x); pass a cache under the name this version takes.
CACHE_KWARG = "cache" if "cache" in inspect.signature(Qwen3Model.forward).parameters else "past_key_values"


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


def returned_cache(output):
    """The cache a generate() or forward() output carries (named `cache` or `past_key_values` by version)."""
    for name in ("cache", "past_key_values"):
        if name in output.keys():
            return output[name]
    return None
