"""Qwen3 (GQA): the replacement attention forward and its cache geometry."""

from __future__ import annotations

import sys

import torch
from torch import nn

from asynctls_hf import ops
from asynctls_hf.attention import asynctls_attention
from asynctls_hf.cache import AsyncTLSCache, LayerGeometry
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.patches import ModelFamily, UnsupportedModelError

_REQUIRED_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj")


def _head_dim(text_config) -> int:
    return getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads


def layer_geometry(text_config) -> list[LayerGeometry]:
    head_dim = _head_dim(text_config)
    geometry = LayerGeometry(text_config.num_key_value_heads, head_dim, head_dim)
    return [geometry] * text_config.num_hidden_layers


def prefill_attention_bytes(text_config, batch: int, tokens: int, chunk: int, dtype: torch.dtype, device) -> int:
    """The prefill attention reads the cached keys and values as they are: only the attention call's own
    (ops.prefill_attention.working_bytes)."""
    head_dim = _head_dim(text_config)
    return ops.prefill_attention.working_bytes(
        text_config.num_attention_heads, text_config.num_key_value_heads, head_dim, head_dim, batch, chunk, tokens,
        dtype, device,
    )


def check_attention(module: nn.Module, config: AsyncTLSConfig) -> None:
    """Raise UnsupportedModelError unless `module` is a Qwen3-style GQA attention we know how to run."""
    name = type(module).__name__
    missing = [
        attr
        for attr in (*_REQUIRED_LINEARS, "q_norm", "k_norm", "head_dim", "layer_idx", "scaling", "num_key_value_groups")
        if not hasattr(module, attr)
    ]
    if missing:
        raise UnsupportedModelError(f"{name} does not look like Qwen3 attention: it has no {', '.join(missing)}")
    if getattr(module, "sliding_window", None) is not None:
        raise UnsupportedModelError(
            f"layer {module.layer_idx} uses sliding-window attention, which AsyncTLS does not support; "
            "set use_sliding_window=False in the model config"
        )
    heads_times_dim = module.q_proj.out_features
    kv_times_dim = module.k_proj.out_features
    if heads_times_dim % module.head_dim or kv_times_dim % module.head_dim:
        raise UnsupportedModelError(f"{name} projections do not split into heads of width {module.head_dim}")
    if (heads_times_dim // module.head_dim) != (kv_times_dim // module.head_dim) * module.num_key_value_groups:
        raise UnsupportedModelError(f"{name} query heads are not a multiple of its key/value heads")
    if not hasattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb"):
        raise UnsupportedModelError(f"{name}'s module has no apply_rotary_pos_emb")
    config.label_channels_for(module.head_dim)


def forward(
    module: nn.Module,
    cache: AsyncTLSCache,
    hidden_states: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    *args,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Qwen3Attention.forward with the cache update and attention replaced by AsyncTLS.

    hidden_states [B, T, hidden]; returns ([B, T, hidden], None).
    """
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, module.head_dim)
    query = module.q_norm(module.q_proj(hidden_states).view(hidden_shape)).transpose(1, 2)
    key = module.k_norm(module.k_proj(hidden_states).view(hidden_shape)).transpose(1, 2)
    value = module.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    cos, sin = position_embeddings
    query, key = sys.modules[type(module).__module__].apply_rotary_pos_emb(query, key, cos, sin)
    output = asynctls_attention(cache, module.layer_idx, query, key, value, module.scaling)
    output = output.transpose(1, 2).reshape(*input_shape, -1)
    return module.o_proj(output), None


FAMILY = ModelFamily("qwen3", layer_geometry, check_attention, forward, prefill_attention_bytes)
