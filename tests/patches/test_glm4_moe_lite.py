"""GLM-4.7-Flash (glm4_moe_lite, MLA): latent cache, absorbed attention, shared selection, rejected kv_b_proj."""

import copy
import sys

import pytest
import torch
from helpers import (
    assert_chunked_forward_equals_full,
    assert_same_generation,
    assert_same_scores_exactly,
    greedy,
    is_unpatched,
    left_padded_batch,
    returned_cache,
    tiny_glm4_moe_lite,
)
from torch import nn
from transformers import Glm4MoeLiteConfig
from transformers.models.glm4_moe_lite.modeling_glm4_moe_lite import Glm4MoeLiteAttention

import asynctls_hf
from asynctls_hf import AsyncTLSCache, AsyncTLSConfig, UnsupportedModelError
from asynctls_hf.attention import select_tokens
from asynctls_hf.patches.glm4_moe_lite import absorbed_attention, absorbed_weights, layer_geometry
from asynctls_hf.probes import load_probe

LENGTHS = [37, 25, 11]
# Tiny keys are 32 + 8 = 40 wide, so label_channels is given explicitly.
DENSE = dict(token_budget=512, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=64, label_channels=8)
SPARSE = dict(token_budget=24, sink_tokens=4, local_tokens=8, block_size=8, top_blocks=32, label_channels=8)
YARN = dict(
    rope_type="yarn",
    rope_theta=10000.0,
    factor=4.0,
    original_max_position_embeddings=1024,
    mscale=1.0,
    mscale_all_dim=1.0,
    beta_fast=32.0,
    beta_slow=1.0,
)


def count_kv_b_proj_calls(model) -> list:
    calls = []
    for layer in model.model.layers:
        layer.self_attn.kv_b_proj.register_forward_hook(lambda module, args, output: calls.append(args[0].shape))
    return calls


@pytest.mark.parametrize(
    "config_overrides",
    [{}, dict(q_lora_rank=24, rope_interleave=False, rope_parameters=YARN)],
    ids=["q_proj-interleaved-rope", "q_lora-yarn-mscale-plain-rope"],
)
def test_dense_equivalence_left_padded_greedy_and_unpatch_restores(config_overrides):
    model = tiny_glm4_moe_lite(**config_overrides)
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    reference = greedy(model, input_ids, attention_mask, 40)

    asynctls_hf.patch(model, **DENSE)
    kv_b_proj_calls = count_kv_b_proj_calls(model)
    output = greedy(model, input_ids, attention_mask, 40)
    assert_same_generation(reference, output, atol=1e-4)
    # Prefill expands the prompt's latent once per layer; decode is absorbed and never expands the cache.
    assert [tuple(shape) for shape in kv_b_proj_calls] == [(3, input_ids.shape[1], 32)] * 3
    cache = returned_cache(output)
    assert isinstance(cache, AsyncTLSCache)
    for layer in cache.layers:  # one group holding [latent, k_rot]; the values are a view of the latent
        assert layer.keys.shape[1:] == (1, layer.capacity, 32 + 8)
        assert layer.values.shape[-1] == 32 and layer.values.data_ptr() == layer.keys.data_ptr()
    stats = cache.stats()
    assert stats["sparse_layer_steps"] == 0 and stats["dense_layer_steps"] == 39 * 3

    asynctls_hf.unpatch(model)
    assert is_unpatched(model)
    assert_same_scores_exactly(reference, greedy(model, input_ids, attention_mask, 40))


def test_chunked_cached_forward_equals_one_full_forward():
    assert_chunked_forward_equals_full(tiny_glm4_moe_lite(), LENGTHS, (16, 17, 30), atol=1e-4, **DENSE)


# ---- absorbed attention against the stock expanded K/V, at GLM-4.7-Flash's attention shapes -------------

FLASH_ATTENTION = dict(
    hidden_size=256,
    num_attention_heads=20,
    num_key_value_heads=20,
    kv_lora_rank=512,
    q_lora_rank=None,
    qk_rope_head_dim=64,
    qk_nope_head_dim=192,
    v_head_dim=256,
    num_hidden_layers=1,
)
# Relative error ||absorbed - expanded|| / ||expanded||, the expanded reference computed in float64 from the
# same inputs and weights: float32 keeps ~7 digits; bfloat16 rounds the absorbed query, the scores' inputs and
# the latent output (8-bit mantissa, ~4e-3 each).
RELATIVE_ERROR_BOUND = {torch.float32: 1e-5, torch.bfloat16: 1e-2}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize(
    "settings",
    [
        dict(token_budget=512, sink_tokens=4, local_tokens=16, block_size=16, top_blocks=32),
        dict(token_budget=64, sink_tokens=4, local_tokens=16, block_size=16, top_blocks=4),
    ],
    ids=["dense", "sparse"],
)
def test_absorbed_decode_equals_expanded_attention(dtype, settings):
    torch.manual_seed(0)
    module = Glm4MoeLiteAttention(Glm4MoeLiteConfig(**FLASH_ATTENTION), layer_idx=0).to(dtype)
    batch, context, heads = 2, 203, FLASH_ATTENTION["num_attention_heads"]
    query_nope = 4 * torch.randn(batch, heads, context, 192, dtype=dtype)
    query_rot = 4 * torch.randn(batch, heads, context, 64, dtype=dtype)
    latent = torch.randn(batch, 1, context, 512, dtype=dtype)
    key_rot = torch.randn(batch, 1, context, 64, dtype=dtype)
    attention_mask = torch.ones(batch, context, dtype=torch.long)
    attention_mask[1, :19] = 0

    config = AsyncTLSConfig(**settings)
    cache = AsyncTLSCache(layer_geometry(module.config), config)
    cache.observe_attention_mask(attention_mask[:, :-1], batch, context - 1, torch.device("cpu"))
    prompt = slice(0, context - 1)
    absorbed_attention(
        module, cache, query_nope[:, :, prompt], query_rot[:, :, prompt], latent[:, :, prompt], key_rot[:, :, prompt]
    )
    step = slice(context - 1, context)
    output = absorbed_attention(
        module, cache, query_nope[:, :, step], query_rot[:, :, step], latent[:, :, step], key_rot[:, :, step]
    )  # [B, 1, H * v_head_dim]

    attended = attention_mask.bool()
    sparse = settings["token_budget"] < context
    assert cache.stats()["sparse_layer_steps"] == int(sparse)
    if sparse:  # the slots the decode step attended: select_tokens is deterministic for the same query
        key_up, _ = absorbed_weights(module)
        query_latent = torch.einsum("bhtn,hnr->bhtr", query_nope[:, :, step], key_up)
        grouped_query = torch.cat([query_latent, query_rot[:, :, step]], dim=-1).view(batch, 1, heads, 576)
        layer = cache.layers[0]
        slots, valid = select_tokens(grouped_query, layer, cache.decode_plan(layer.length, layer.device), config,
                                     scaling=module.scaling)
        attended = torch.zeros_like(attended).scatter_(1, slots[:, 0], valid[:, 0])
        assert attended.sum(dim=1).tolist() == [settings["token_budget"]] * batch

    reference_module = copy.deepcopy(module).double()
    keys, values = reference_module.expand_kv(latent.double(), key_rot.double())  # [B, H, S, 256] each
    query = torch.cat([query_nope[:, :, step], query_rot[:, :, step]], dim=-1).double()
    additive_mask = torch.zeros(batch, 1, 1, context, dtype=torch.float64).masked_fill(
        ~attended[:, None, None, :], float("-inf")
    )
    modeling = sys.modules[type(module).__module__]
    expected, _ = modeling.eager_attention_forward(
        reference_module, query, keys, values, additive_mask, scaling=module.scaling
    )  # [B, 1, H, v_head_dim]
    expected = expected.reshape(batch, 1, -1)
    relative_error = (output.double() - expected).norm() / expected.norm()
    assert relative_error < RELATIVE_ERROR_BOUND[dtype]


# ---- sparse decoding: one selection shared by all heads --------------------------------------------------


def test_sparse_selection_is_shared_by_heads_within_budget_and_keeps_sinks_and_local_window():
    model = asynctls_hf.patch(tiny_glm4_moe_lite(), **SPARSE)
    input_ids, attention_mask = left_padded_batch([60, 45, 30])
    output = greedy(model, input_ids, attention_mask, 12)
    cache = returned_cache(output)
    stats = cache.stats()
    assert stats["sparse_layer_steps"] == 11 * 3 and stats["dense_layer_steps"] == 0
    assert 0 < stats["attended_tokens"] <= SPARSE["token_budget"]

    config = AsyncTLSConfig(**SPARSE)
    row_start = (attention_mask == 0).sum(dim=1)
    generator = torch.Generator().manual_seed(1)
    for layer in cache.layers:
        length = layer.length
        query = torch.randn(3, 1, model.config.num_attention_heads, 40, generator=generator)  # [B, NG=1, H, 576]
        slots, valid = select_tokens(query, layer, cache.decode_plan(length, layer.device), config, scaling=1.0)
        assert slots.shape == valid.shape == (3, 1, SPARSE["token_budget"])  # one set of slots for all heads
        for row in range(3):
            chosen = slots[row, 0][valid[row, 0]].tolist()
            start = int(row_start[row])
            assert len(chosen) == len(set(chosen)) == SPARSE["token_budget"]
            assert all(start <= slot < length for slot in chosen), "a pad slot was selected"
            assert set(range(start, start + SPARSE["sink_tokens"])) <= set(chosen)
            assert set(range(length - SPARSE["local_tokens"], length)) <= set(chosen)


# ---- kv_b_proj that absorbed attention cannot read -------------------------------------------------------


class Int8Linear(nn.Module):
    """A stand-in for a quantized linear layer: int8 weight and a per-row scale."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.scale = linear.weight.abs().amax(dim=1, keepdim=True) / 127
        self.weight = nn.Parameter((linear.weight / self.scale).round().to(torch.int8), requires_grad=False)

    def forward(self, hidden_states):
        return hidden_states @ (self.weight.float() * self.scale).T


class ScaledLinear(nn.Linear):
    """An nn.Linear subclass that computes something else than weight @ x (as fp8 linear layers do)."""

    def forward(self, hidden_states):
        return 2 * super().forward(hidden_states)


def _int8_weight(linear):
    linear.weight = nn.Parameter(linear.weight.to(torch.int8), requires_grad=False)
    return linear


def _float8_weight(linear):
    linear.weight = nn.Parameter(linear.weight.to(torch.float8_e4m3fn), requires_grad=False)
    return linear


def _scaled_linear(linear):
    scaled = ScaledLinear(linear.in_features, linear.out_features, bias=False)
    scaled.weight = linear.weight
    return scaled


@pytest.mark.parametrize(
    ("quantize", "message"),
    [
        (_int8_weight, "torch.int8 weight"),
        (_float8_weight, "torch.float8_e4m3fn weight"),
        (Int8Linear, "not a plain torch.nn.Linear"),
        (_scaled_linear, "not a plain torch.nn.Linear"),
    ],
    ids=["int8-weight", "float8-weight", "quantized-module", "linear-subclass"],
)
def test_quantized_kv_b_proj_is_rejected_and_model_untouched(quantize, message):
    model = tiny_glm4_moe_lite()
    attention = model.model.layers[1].self_attn
    attention.kv_b_proj = quantize(attention.kv_b_proj)
    replaced = attention.kv_b_proj
    with pytest.raises(UnsupportedModelError, match=rf"layer 1: kv_b_proj .*{message}.*W_uk and W_uv"):
        asynctls_hf.patch(model, **DENSE)
    assert is_unpatched(model)
    assert attention.kv_b_proj is replaced
    assert not model.model._forward_pre_hooks and "_prepare_cache_for_generation" not in vars(model)


def test_label_channels_default_to_a_third_of_the_576_wide_latent_key():
    geometry = layer_geometry(Glm4MoeLiteConfig())
    assert len(geometry) == 47
    assert (geometry[0].num_groups, geometry[0].key_width, geometry[0].value_width) == (1, 576, 512)
    assert geometry[0].values_in_keys
    assert AsyncTLSConfig().label_channels_for(geometry[0].key_width, latent=geometry[0].values_in_keys) == 192
    assert AsyncTLSConfig().label_channels_for(128) == 32  # a GQA key of the same config: a quarter
    assert AsyncTLSConfig(label_channels=96).label_channels_for(576, latent=True) == 96


def test_the_patched_probe_cache_labels_a_third_of_its_latent_key():
    model, _ = load_probe("glm4_moe_lite")
    asynctls_hf.patch(model)
    cache = AsyncTLSCache.for_model(model, max_length=256)
    assert {layer.num_label_channels for layer in cache.layers} == {64}  # of 128 latent + 64 rope channels


def test_latent_keys_rank_tokens_by_head_mass_and_gqa_keys_by_the_summed_query_unless_configured():
    assert AsyncTLSConfig().token_scoring_for(latent=True) == "head_mass"
    assert AsyncTLSConfig().token_scoring_for(latent=False) == "summed"
    assert AsyncTLSConfig(token_scoring="summed").token_scoring_for(latent=True) == "summed"
    assert AsyncTLSConfig(token_scoring="head_mass").token_scoring_for(latent=False) == "head_mass"
    with pytest.raises(ValueError, match="token_scoring must be one of"):
        AsyncTLSConfig(token_scoring="max")
    model, _ = load_probe("glm4_moe_lite")
    asynctls_hf.patch(model)
    cache = AsyncTLSCache.for_model(model, max_length=256)
    assert {layer.token_scoring for layer in cache.layers} == {"head_mass"}
