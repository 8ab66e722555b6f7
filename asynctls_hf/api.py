"""patch / unpatch / patched: install AsyncTLS on a transformers model instance, and take it off again."""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass, field

import torch
from torch import nn
from transformers.cache_utils import DynamicCache

from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.graphs import DecodeGraphs
from asynctls_hf.patches import ModelFamily, UnsupportedModelError, family_for
from asynctls_hf.prefill import ChunkedPrefill, LastTokensHint, prefill_working_bytes


@dataclass
class _PatchState:
    """What patch() changed on a model, so that unpatch() can restore it exactly."""

    family: ModelFamily
    config: AsyncTLSConfig
    geometry: list
    restorers: list = field(default_factory=list)


def patch(model: nn.Module, config: AsyncTLSConfig | None = None, **overrides) -> nn.Module:
    """Make `model` decode with AsyncTLS; returns the same model, changed in place.

    Each attention module's forward (accelerate's `_old_forward` where a hook wraps it) is replaced on the
    instance; generate() and forward() build an AsyncTLSCache when given no cache. A cache that is not an
    AsyncTLSCache (a static cache, a user's DynamicCache) or use_cache=False runs the stock attention.
    Patching a patched model replaces its config. Any error leaves the model as it was.

    Raises UnsupportedModelError (a ValueError) for a model type or attention module we cannot run, and
    ValueError for an invalid config value.
    """
    family = family_for(model.config)
    if config is not None and not isinstance(config, AsyncTLSConfig):
        raise ValueError(f"config must be an AsyncTLSConfig, got {type(config).__name__}")
    config = (config or AsyncTLSConfig()).replace(**overrides) if overrides else (config or AsyncTLSConfig())
    decoder = _decoder_of(model)
    attention_modules = [layer.self_attn for layer in decoder.layers]
    for module in attention_modules:
        family.check_attention(module, config)
    text_config = model.config.get_text_config(decoder=True)
    geometry = family.layer_geometry(text_config)
    for layer_geometry in geometry:
        config.label_channels_for(layer_geometry.key_width, latent=layer_geometry.values_in_keys)

    state: _PatchState | None = getattr(model, "_asynctls_state", None)
    if state is not None:
        state.config = config
        return model
    state = _PatchState(family, config, geometry)
    try:
        for module in attention_modules:
            _replace_forward(module, family, state)
        _install_cache_builders(model, decoder, state)
        _install_chunked_prefill(model, decoder, state)
        _install_decode_graphs(model, state)
    except BaseException:
        for restore in reversed(state.restorers):
            restore()
        raise
    model._asynctls_state = state
    return model


def unpatch(model: nn.Module) -> nn.Module:
    """Restore the exact original behaviour of a patched model (a no-op on an unpatched one)."""
    state: _PatchState | None = getattr(model, "_asynctls_state", None)
    if state is None:
        return model
    for restore in reversed(state.restorers):
        restore()
    del model._asynctls_state
    return model


@contextlib.contextmanager
def patched(model: nn.Module, config: AsyncTLSConfig | None = None, **overrides):
    """Context manager: the model is patched inside the block and restored on exit, whatever happens."""
    previous: _PatchState | None = getattr(model, "_asynctls_state", None)
    previous_config = previous.config if previous is not None else None
    patch(model, config, **overrides)
    try:
        yield model
    finally:
        if previous_config is None:
            unpatch(model)
        else:
            model._asynctls_state.config = previous_config


def _decoder_of(model: nn.Module) -> nn.Module:
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model
    if not hasattr(decoder, "layers") or not all(hasattr(layer, "self_attn") for layer in decoder.layers):
        raise UnsupportedModelError(
            f"{type(model).__name__} has no decoder with `layers[i].self_attn`; pass a causal LM or its base model"
        )
    return decoder


def _set_instance_attribute(obj, name: str, value, state: _PatchState) -> None:
    """Set obj.name on the instance and record how to undo it."""
    had_own = name in vars(obj)
    previous = vars(obj).get(name)

    def restore():
        if had_own:
            setattr(obj, name, previous)
        else:
            delattr(obj, name)

    setattr(obj, name, value)
    state.restorers.append(restore)


def _replace_forward(module: nn.Module, family: ModelFamily, state: _PatchState) -> None:
    attribute = _forward_attribute(module)
    original = getattr(module, attribute)
    signature = inspect.signature(original)

    def forward(*args, **kwargs):
        arguments = signature.bind_partial(*args, **kwargs).arguments
        cache = arguments.get("cache", arguments.get("past_key_values"))
        if not isinstance(cache, AsyncTLSCache):
            return original(*args, **kwargs)
        return family.forward(module, cache, arguments["hidden_states"], arguments["position_embeddings"])

    _set_instance_attribute(module, attribute, forward, state)


def _install_chunked_prefill(model: nn.Module, decoder: nn.Module, state: _PatchState) -> None:
    """Run long prompts through the decoder in chunks of config.prefill_chunk_size tokens, and let a causal LM's
    call that reads only its last positions' logits have only those positions' hidden states (asynctls_hf.prefill)."""
    attribute = _forward_attribute(decoder)
    chunked = ChunkedPrefill(getattr(decoder, attribute), cache_argument(decoder), lambda: state.config)
    _set_instance_attribute(decoder, attribute, chunked, state)
    if _head_takes_logits_to_keep(model, decoder):
        attribute = _forward_attribute(model)
        output_hidden_states = bool(getattr(model.config, "output_hidden_states", False))
        hint = LastTokensHint(getattr(model, attribute), chunked, output_hidden_states)
        _set_instance_attribute(model, attribute, hint, state)


def _head_takes_logits_to_keep(model: nn.Module, decoder: nn.Module) -> bool:
    """Whether `model` is a causal LM around `decoder` whose forward computes logits for its last positions only
    when asked (logits_to_keep, which generate() sets to 1)."""
    return model is not decoder and "logits_to_keep" in inspect.signature(model.forward).parameters


def _forward_attribute(module: nn.Module) -> str:
    """Where a module's forward is replaced: accelerate's `_old_forward` where its hook wraps the module."""
    return "_old_forward" if hasattr(module, "_hf_hook") and hasattr(module, "_old_forward") else "forward"


def _install_decode_graphs(model: nn.Module, state: _PatchState) -> None:
    """Replay the model's decode steps from CUDA graphs where they can be (asynctls_hf.graphs)."""
    attribute = _forward_attribute(model)
    _set_instance_attribute(model, attribute, DecodeGraphs(model, getattr(model, attribute)), state)


def cache_argument(module: nn.Module | type[nn.Module]) -> str:
    """The keyword under which `module.forward` (a model or an attention module, or its class) takes the KV
    cache: `past_key_values` in older transformers, `cache` in newer ones."""
    parameters = inspect.signature(module.forward).parameters
    return "cache" if "cache" in parameters else "past_key_values"


def returned_cache(output):
    """The cache a generate() (return_dict_in_generate=True) or forward() output carries, or None: the field is
    `cache` in newer transformers and `past_key_values` in older ones (reading the old name warns in newer)."""
    for name in ("cache", "past_key_values"):
        if name in output.keys():
            return output[name]
    return None


def _install_cache_builders(model: nn.Module, decoder: nn.Module, state: _PatchState) -> None:
    """Make forward() and generate() use an AsyncTLSCache when the caller gave none, and keep masks small."""
    cache_name = cache_argument(decoder)
    use_cache_default = getattr(model.config.get_text_config(decoder=True), "use_cache", True)

    def prepare_decoder_inputs(module, args, kwargs):
        cache = kwargs.get(cache_name)
        if cache is None:
            use_cache = kwargs.get("use_cache")
            if (use_cache if use_cache is not None else use_cache_default) and not module.training:
                cache = kwargs[cache_name] = AsyncTLSCache(state.geometry, state.config)
        if not isinstance(cache, AsyncTLSCache):
            return None
        embeddings = kwargs.get("inputs_embeds")
        inputs = embeddings if embeddings is not None else kwargs.get("input_ids", args[0] if args else None)
        batch, tokens = inputs.shape[:2]
        device = inputs.device
        attention_mask = kwargs.get("attention_mask")
        cache.observe_attention_mask(attention_mask, batch, tokens, device)
        # A 4D mask passes through transformers' mask creation untouched: no [B, 1, T, S] mask is ever built.
        # The AsyncTLS forward reads padding from the cache, not from this tensor.
        if attention_mask is None:
            attention_mask = torch.ones(batch, cache.get_seq_length() + tokens, dtype=torch.bool, device=device)
        kwargs["attention_mask"] = attention_mask.to(torch.bool)[:, None, None, :]
        return args, kwargs

    handle = decoder.register_forward_pre_hook(prepare_decoder_inputs, with_kwargs=True)
    state.restorers.append(handle.remove)

    original_prepare = model._prepare_cache_for_generation
    prepare_signature = inspect.signature(original_prepare)

    text_config = model.config.get_text_config(decoder=True)
    # generate() asks a causal LM for its last token's logits (logits_to_keep=1): LastTokensHint then keeps the
    # prefill from returning every prompt position's hidden state.
    returns_last_token = _head_takes_logits_to_keep(model, decoder)

    def _prefill_bytes(batch, tokens, dtype, devices) -> dict[torch.device, int]:
        """Per device, the chunked prefill's working memory (asynctls_hf.prefill.prefill_working_bytes) and what one
        layer's prefill attention allocates (ModelFamily.prefill_attention_bytes)."""
        if tokens is None:
            return {}
        chunk = state.config.prefill_chunk_size
        per_chunk, hidden_states = prefill_working_bytes(
            text_config.hidden_size, text_config.intermediate_size, batch, tokens, chunk, dtype,
            returned_tokens=1 if returns_last_token else None,
        )
        needs = {
            device: per_chunk + state.family.prefill_attention_bytes(text_config, batch, tokens, chunk, dtype, device)
            for device in dict.fromkeys(devices)
        }
        needs[devices[-1]] += hidden_states
        return needs

    def prepare_cache_for_generation(*args, **kwargs):
        arguments = prepare_signature.bind(*args, **kwargs).arguments
        generation_config, model_kwargs = arguments["generation_config"], arguments["model_kwargs"]
        user_cache = model_kwargs.get("cache", model_kwargs.get("past_key_values"))
        result = original_prepare(*args, **kwargs)
        if user_cache is None and generation_config.cache_implementation in (None, "dynamic"):
            for key in ("cache", "past_key_values"):
                if type(model_kwargs.get(key)) is DynamicCache:
                    max_length = arguments.get("max_cache_length")
                    cache = AsyncTLSCache(state.geometry, state.config, max_length=max_length)
                    expansion = max(generation_config.num_beams or 1, generation_config.num_return_sequences or 1)
                    batch = arguments["batch_size"] * expansion
                    attention = [layer.self_attn for layer in decoder.layers]
                    dtype = next(attention[0].parameters()).dtype
                    devices = [next(module.parameters()).device for module in attention]
                    cache.plan_placement(batch, dtype, devices, _prefill_bytes(batch, max_length, dtype, devices))
                    model_kwargs[key] = cache
        return result

    _set_instance_attribute(model, "_prepare_cache_for_generation", prepare_cache_for_generation, state)
