"""Chunked prefill: a long prompt runs through the whole decoder one chunk of tokens at a time.

Attention over a prompt is already computed in chunks of `prefill_chunk_size` queries, but the rest of a layer
(the projections, the MLP) ran on every prompt token at once: at 96k tokens and batch 8 one Qwen3-8B MLP
intermediate alone is 18 GiB, so a cache that fits (offloaded, even) could not be filled. The decoder's forward is
wrapped so that a prompt longer than `prefill_chunk_size` going into an AsyncTLSCache is fed as consecutive chunks,
each appended to the cache before the next attends to it; activations then scale with the chunk, not the prompt.
The output equals one forward over the whole prompt (the chunks' hidden states concatenated), so the model's head
and generate() see no difference; the cache too: the label channels, which one forward chooses from the whole
prompt's queries and keys, are chosen from statistics summed over every chunk, and the tokens labelled after the
last chunk.
"""

from __future__ import annotations

import functools

import torch

from asynctls_hf.cache import AsyncTLSCache

_SEQUENCE_INPUTS = ("input_ids", "inputs_embeds", "position_ids")  # [B, T, ...]: sliced per chunk


class ChunkedPrefill:
    """Wraps a decoder's forward (called with keyword arguments, after the patch's input hook has made the
    attention mask [B, 1, 1, S] and recorded the prompt's padding): a prompt of T > prefill_chunk_size tokens into
    an AsyncTLSCache runs as ceil(T / prefill_chunk_size) forwards, in order."""

    def __init__(self, forward, cache_name: str, config_of):
        self.forward = forward
        self.cache_name = cache_name
        self.config_of = config_of  # () -> the patch's current AsyncTLSConfig
        functools.update_wrapper(self, forward)

    def __call__(self, *args, **kwargs):
        cache = kwargs.get(self.cache_name)
        inputs = kwargs.get("input_ids")
        if inputs is None:
            inputs = kwargs.get("inputs_embeds")
        chunk = self.config_of().prefill_chunk_size
        if args or not isinstance(cache, AsyncTLSCache) or inputs is None or inputs.shape[1] <= chunk:
            return self.forward(*args, **kwargs)
        if kwargs.get("output_attentions"):
            raise ValueError("AsyncTLS does not return attention weights; call without output_attentions")
        tokens = inputs.shape[1]
        past = cache.get_seq_length()
        hidden = None  # [B, T, H]: every chunk's last hidden state, written in place (no concatenation copy)
        layer_states = []  # per chunk, the per-layer hidden states when output_hidden_states asked for them
        cache.defer_label_channels()
        try:
            for begin in range(0, tokens, chunk):
                end = min(begin + chunk, tokens)
                output = self.forward(**_chunk_arguments(kwargs, begin, end, past))
                state = output.last_hidden_state
                if hidden is None:
                    hidden = state.new_empty((state.shape[0], tokens, *state.shape[2:]))
                hidden[:, begin:end] = state
                if output.get("hidden_states") is not None:
                    layer_states.append(output.hidden_states)
        finally:
            cache.write_deferred_labels()  # the label channels from the whole prompt, as one forward chooses them
        output.last_hidden_state = hidden
        if layer_states:
            output.hidden_states = tuple(torch.cat(parts, dim=1) for parts in zip(*layer_states, strict=True))
        return output


def prefill_working_bytes(
    hidden_size: int, intermediate_size: int, batch: int, tokens: int, chunk: int, dtype: torch.dtype
) -> tuple[int, int]:
    """GPU bytes a chunked prefill of `tokens` tokens per row needs beside the weights and the cache, as
    (on every device holding layers, one chunk's working memory; on the device of the last layer, the prompt's
    last hidden states [B, T, H] that the decoder returns). A chunk of c tokens: its MLP's gate, up and their
    product [B, c, I] each, about eight hidden-sized tensors [B, c, H] (residual stream, norms, attention input
    and output), and its attention's mask over the context [B, c, T], boolean and as the additive bias PyTorch's
    attention makes of it (ops.causal_prefill_attention). On the H200 (Qwen3-8B, 96k, batch 8, offloaded by tokens,
    2026-11-29) the generation's peak was 49.9 GiB; weights, the planned cache and this estimate make 51.8 GiB."""
    chunk_tokens = min(chunk, tokens)
    activations = batch * chunk_tokens * (3 * intermediate_size + 8 * hidden_size) * dtype.itemsize
    attention_mask = batch * chunk_tokens * tokens * (1 + dtype.itemsize)
    return activations + attention_mask, batch * tokens * hidden_size * dtype.itemsize


def _chunk_arguments(kwargs: dict, begin: int, end: int, past: int) -> dict:
    """The forward's arguments for prompt tokens [begin, end): sequence inputs sliced, the attention mask
    [B, 1, 1, past + T] cut after the chunk, cache_position [T] sliced."""
    arguments = dict(kwargs)
    for name in _SEQUENCE_INPUTS:
        value = kwargs.get(name)
        if value is not None:
            arguments[name] = value[:, begin:end]
    cache_position = kwargs.get("cache_position")
    if cache_position is not None:
        arguments["cache_position"] = cache_position[begin:end]
    mask = kwargs.get("attention_mask")
    if mask is not None:
        arguments["attention_mask"] = mask[..., : past + end]
    return arguments

