"""GLM-4.7-Flash (glm4_moe_lite, multi-head latent attention): latent cache and absorbed attention.

The cache keeps, per token and layer, only the normalised latent (kv_lora_rank wide) and the roped k_rot
(qk_rope_head_dim wide), as one key [latent, k_rot] whose first kv_lora_rank channels are the value. kv_b_proj
is never run over cached tokens: its weight is split per head into W_uk [H, qk_nope_head_dim, kv_lora_rank] and
W_uv [H, v_head_dim, kv_lora_rank], the query is absorbed into the latent space (q_lat = q_nope @ W_uk), all
heads attend over the shared latent as one KV group, and each head's latent output is projected to its values
(o_lat @ W_uv^T). Scores are unchanged: q_nope . (W_uk^T latent) = (q_nope W_uk) . latent.
"""

from __future__ import annotations

import sys

import torch
from torch import nn

from asynctls_hf import ops
from asynctls_hf.attention import append_tokens, decode_attention
from asynctls_hf.cache import AsyncTLSCache, LayerGeometry
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.patches import ModelFamily, UnsupportedModelError

_REQUIRED_ATTRIBUTES = (
    "kv_a_proj_with_mqa",
    "kv_a_layernorm",
    "kv_b_proj",
    "o_proj",
    "q_lora_rank",
    "num_heads",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "scaling",
    "layer_idx",
    "config",
)
_WEIGHT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def layer_geometry(text_config) -> list[LayerGeometry]:
    latent_width = text_config.kv_lora_rank
    geometry = LayerGeometry(1, latent_width + text_config.qk_rope_head_dim, latent_width, values_in_keys=True)
    return [geometry] * text_config.num_hidden_layers


def check_attention(module: nn.Module, config: AsyncTLSConfig) -> None:
    """Raise UnsupportedModelError unless `module` is MLA attention whose kv_b_proj we can split per head."""
    name = type(module).__name__
    missing = [attr for attr in _REQUIRED_ATTRIBUTES if not hasattr(module, attr)]
    if not missing:
        query_projections = ("q_proj",) if module.q_lora_rank is None else ("q_a_proj", "q_a_layernorm", "q_b_proj")
        missing = [attr for attr in query_projections if getattr(module, attr, None) is None]
    if not missing and not hasattr(module.config, "rope_interleave"):
        missing = ["config.rope_interleave"]
    if missing:
        raise UnsupportedModelError(
            f"{name} does not look like multi-head latent attention: it has no {', '.join(missing)}"
        )
    modeling = sys.modules[type(module).__module__]
    for function in ("apply_rotary_pos_emb", "apply_rotary_pos_emb_interleave"):
        if not hasattr(modeling, function):
            raise UnsupportedModelError(f"{name}'s module has no {function}")
    _check_kv_b_proj(module)
    config.label_channels_for(module.kv_lora_rank + module.qk_rope_head_dim, latent=True)


def _check_kv_b_proj(module: nn.Module) -> None:
    """Absorbed attention reads kv_b_proj's weight directly, so it must be a plain floating-point nn.Linear."""
    projection = module.kv_b_proj
    where = f"layer {module.layer_idx}: kv_b_proj ({type(projection).__name__})"
    why = "AsyncTLS splits this weight per head into W_uk and W_uv to attend over the cached latent"
    if not isinstance(projection, nn.Linear) or type(projection).forward is not nn.Linear.forward:
        raise UnsupportedModelError(
            f"{where} is not a plain torch.nn.Linear (quantized or wrapped?); {why}, so it needs an unquantized "
            "floating-point weight: load the model without quantizing kv_b_proj"
        )
    weight = projection.weight
    if weight.dtype not in _WEIGHT_DTYPES:
        raise UnsupportedModelError(
            f"{where} has a {weight.dtype} weight; {why}, which needs float16, bfloat16, float32 or float64: "
            "load the model without quantizing kv_b_proj"
        )
    if weight.is_meta:
        raise UnsupportedModelError(
            f"{where} has its weight on the meta device (offloaded by accelerate?); {why}, so it must be loaded on "
            "the model's device"
        )
    if projection.bias is not None:
        raise UnsupportedModelError(f"{where} has a bias, which absorbed attention does not handle")
    expected = (module.num_heads * (module.qk_nope_head_dim + module.v_head_dim), module.kv_lora_rank)
    if tuple(weight.shape) != expected:
        raise UnsupportedModelError(f"{where} has weight shape {tuple(weight.shape)}, expected {expected}")


def absorbed_weights(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of kv_b_proj's weight: W_uk [H, qk_nope_head_dim, R] and W_uv [H, v_head_dim, R] (R = kv_lora_rank).

    Per head h, k_nope = latent @ W_uk[h]^T and value = latent @ W_uv[h]^T.
    """
    per_head = module.kv_b_proj.weight.view(module.num_heads, module.qk_nope_head_dim + module.v_head_dim, -1)
    return per_head[:, : module.qk_nope_head_dim], per_head[:, module.qk_nope_head_dim :]


def forward(
    module: nn.Module,
    cache: AsyncTLSCache,
    hidden_states: torch.Tensor,
    position_embeddings: tuple[torch.Tensor, torch.Tensor],
    *args,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Glm4MoeLiteAttention.forward (or DeepseekV3Attention's, the same) with a latent cache and absorbed attention.

    hidden_states [B, T, hidden]; returns ([B, T, hidden], None).
    """
    batch, tokens = hidden_states.shape[:-1]
    if module.q_lora_rank is None:
        query = module.q_proj(hidden_states)
    else:
        query = module.q_b_proj(module.q_a_layernorm(module.q_a_proj(hidden_states)))
    query = query.view(batch, tokens, module.num_heads, -1).transpose(1, 2)
    query_nope, query_rot = query.split([module.qk_nope_head_dim, module.qk_rope_head_dim], dim=-1)

    latent, key_rot = module.kv_a_proj_with_mqa(hidden_states).split(
        [module.kv_lora_rank, module.qk_rope_head_dim], dim=-1
    )
    latent = module.kv_a_layernorm(latent).view(batch, 1, tokens, module.kv_lora_rank)
    key_rot = key_rot.view(batch, 1, tokens, module.qk_rope_head_dim)

    cos, sin = position_embeddings
    modeling = sys.modules[type(module).__module__]
    if module.config.rope_interleave:
        query_rot, key_rot = modeling.apply_rotary_pos_emb_interleave(query_rot, key_rot, cos, sin)
    else:
        query_rot, key_rot = modeling.apply_rotary_pos_emb(query_rot, key_rot, cos, sin)

    output = absorbed_attention(module, cache, query_nope, query_rot, latent, key_rot)
    return module.o_proj(output), None


def absorbed_attention(
    module: nn.Module,
    cache: AsyncTLSCache,
    query_nope: torch.Tensor,
    query_rot: torch.Tensor,
    latent: torch.Tensor,
    key_rot: torch.Tensor,
) -> torch.Tensor:
    """Append T tokens' [latent, key_rot] to the cache and attend; computes what the stock module's attention
    computes over expand_kv of every cached token (o_proj excluded).

    Decode attends in latent space (absorbed: kv_b_proj never runs over cached tokens); prefill expands the
    cached latent to per-head keys and values once per forward, so SDPA's fast kernels run at head width
    qk_nope + qk_rope. query_nope [B, H, T, qk_nope_head_dim]; query_rot [B, H, T, qk_rope_head_dim] (roped);
    latent [B, 1, T, R] (normalised); key_rot [B, 1, T, qk_rope_head_dim] (roped). Returns [B, T, H * v_head_dim].
    """
    batch, _, tokens, _ = query_nope.shape
    key_up, value_up = absorbed_weights(module)
    absorbed_query = torch.cat([torch.einsum("bhtn,hnr->bhtr", query_nope, key_up), query_rot], dim=-1)
    first_slot = append_tokens(cache, module.layer_idx, absorbed_query, torch.cat([latent, key_rot], dim=-1), None)
    if tokens > 1:
        output = expanded_prefill_attention(module, cache, first_slot, torch.cat([query_nope, query_rot], dim=-1))
        return output.transpose(1, 2).reshape(batch, tokens, -1)
    output_latent = decode_attention(cache, module.layer_idx, absorbed_query, module.scaling)  # [B, H, 1, R]
    return torch.einsum("bhtr,hvr->bthv", output_latent, value_up).reshape(batch, tokens, -1)


def expanded_prefill_attention(
    module: nn.Module, cache: AsyncTLSCache, first_slot: int, query: torch.Tensor
) -> torch.Tensor:
    """Dense causal prefill over every cached token with keys and values expanded from the latent by kv_b_proj.

    query [B, H, T, qk_nope + qk_rope] (the T newest tokens, slots first_slot ...). Returns [B, H, T, v_head_dim].
    """
    layer = cache.layers[module.layer_idx]
    latent, key_rot = layer.context_kv()[0][:, 0].split([module.kv_lora_rank, module.qk_rope_head_dim], dim=-1)
    batch, length = latent.shape[:2]
    expanded = module.kv_b_proj(latent).view(batch, length, module.num_heads, -1).transpose(1, 2)
    key_nope, values = expanded.split([module.qk_nope_head_dim, module.v_head_dim], dim=-1)
    keys = torch.cat([key_nope, key_rot[:, None].expand(-1, module.num_heads, -1, -1)], dim=-1)
    return ops.causal_prefill_attention(
        query,
        keys,
        values,
        first_slot,
        cache.row_start.to(query.device),
        cache.row_start_host,
        module.scaling,
        cache.config.prefill_chunk_size,
    )


def prefill_attention_bytes(text_config, batch: int, tokens: int, chunk: int, dtype: torch.dtype, device) -> int:
    """What expanded_prefill_attention allocates over a context of `tokens` tokens per row: kv_b_proj's output
    [B, T, H, qk_nope + v], the keys [B, H, T, qk_nope + qk_rope] and the values made contiguous [B, H, T, v], and
    the attention call's own working memory over them (ops.prefill_attention.working_bytes)."""
    nope, rope, value = text_config.qk_nope_head_dim, text_config.qk_rope_head_dim, text_config.v_head_dim
    heads = text_config.num_attention_heads
    widths = (nope + value) + (nope + rope) + value
    attention = ops.prefill_attention.working_bytes(
        heads, heads, nope + rope, value, batch, chunk, tokens, dtype, device
    )
    return batch * tokens * heads * widths * dtype.itemsize + attention


FAMILY = ModelFamily("glm4_moe_lite", layer_geometry, check_attention, forward, prefill_attention_bytes)
