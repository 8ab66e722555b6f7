"""Per-model-family hooks, chosen by `config.model_type`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from asynctls_hf.cache import LayerGeometry
from asynctls_hf.config import AsyncTLSConfig


class UnsupportedModelError(ValueError):
    """The model's type (or one of its attention modules) is not one AsyncTLS can patch."""


@dataclass(frozen=True)
class ModelFamily:
    """How to patch one model family.

    layer_geometry(text_config) -> what each decoder layer caches;
    check_attention(module, config) raises UnsupportedModelError when a module is not the expected kind;
    forward(module, cache, hidden_states, position_embeddings, **kwargs) -> (output, None) is the replacement
    forward, called only when the cache is an AsyncTLSCache;
    prefill_attention_bytes(text_config, batch, tokens, chunk, dtype, device) -> the transient GPU bytes one
    layer's dense prefill attention allocates on `device` beside the cache and its inputs, in chunks of `chunk`
    queries over a context of `tokens` tokens per row (ops.prefill_attention.working_bytes for the attention
    call, plus what the family builds for it, such as MLA's keys and values expanded from the latent).
    """

    model_type: str
    layer_geometry: Callable[[object], list[LayerGeometry]]
    check_attention: Callable[[nn.Module, AsyncTLSConfig], None]
    forward: Callable
    prefill_attention_bytes: Callable[[object, int, int, int, torch.dtype, torch.device], int]


def _registry() -> dict[str, ModelFamily]:
    from asynctls_hf.patches import deepseek_v3, glm4_moe_lite, qwen3

    return {family.model_type: family for family in (qwen3.FAMILY, glm4_moe_lite.FAMILY, deepseek_v3.FAMILY)}


def supported_model_types() -> list[str]:
    return sorted(_registry())


def family_for(model_config) -> ModelFamily:
    """The family of a transformers config, or UnsupportedModelError naming the supported types."""
    model_type = getattr(model_config.get_text_config(decoder=True), "model_type", None)
    family = _registry().get(model_type)
    if family is None:
        raise UnsupportedModelError(
            f"AsyncTLS does not support model_type {model_type!r}; supported: {', '.join(supported_model_types())}"
        )
    return family
