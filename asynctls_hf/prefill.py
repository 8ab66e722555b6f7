"""Chunked prefill: a long prompt runs through the whole decoder one chunk of tokens at a time.

Attention over a prompt is already computed in chunks of `prefill_chunk_size` queries, but the rest of a layer
(the projections, the MLP) ran on every prompt token at once: at 96k tokens and batch 8 one Qwen3-8B MLP
intermediate alone is 18 GiB, so a cache that fits (offloaded, even) could not be filled. The decoder's forward is
wrapped so that a prompt longer than `prefill_chunk_size` going into an AsyncTLSCache is fed as consecutive chunks,
each appended to the cache before the next attends to it; activations then scale with the chunk, not the prompt.
The output equals one forward over the whole prompt (the chunks' hidden states concatenated), so the model's head
and generate() see no difference; the cache too: the label channels, which one forward chooses from the whole
prompt's queries and keys, are chosen from statistics summed over every chunk, and the tokens labelled after the
last chunk. A causal LM's call that reads only its last positions' logits (generate() asks for the last
token's) gets only those positions' hidden states (LastTokensHint), so nothing of the prompt's size is returned.
"""

from __future__ import annotations

import functools

import torch

from asynctls_hf.cache import AsyncTLSCache

_SEQUENCE_INPUTS = ("input_ids", "inputs_embeds", "position_ids")  # [B, T, ...]: sliced per chunk


class ChunkedPrefill:
    """Wraps a decoder's forward (called with keyword arguments, after the patch's input hook has made the
    attention mask [B, 1, 1, S] and recorded the prompt's padding): a prompt of T > prefill_chunk_size tokens into
    an AsyncTLSCache runs as ceil(T / prefill_chunk_size) forwards, in order.

    `returned_tokens`: set by LastTokensHint for the duration of a model call whose head reads only the last k
    positions (generate() asks for the last token's logits): the prefill then returns the last hidden states of
    those k positions only, [B, k, H], instead of [B, T, H] (6 GiB for Qwen3-8B at 96k, batch 8)."""

    def __init__(self, forward, cache_name: str, config_of):
        self.forward = forward
        self.cache_name = cache_name
        self.config_of = config_of  # () -> the patch's current AsyncTLSConfig
        self.returned_tokens: int | None = None
        functools.update_wrapper(self, forward, updated=())  # not the wrapped object's __dict__

    def __call__(self, *args, **kwargs):
        cache = kwargs.get(self.cache_name)
        inputs = kwargs.get("input_ids")
        if inputs is None:
            inputs = kwargs.get("inputs_embeds")
        chunk = self.config_of().prefill_chunk_size
        if args or not isinstance(cache, AsyncTLSCache) or inputs is None or inputs.shape[1] <= chunk:
            return self.forward(*args, **kwargs)
        tokens = inputs.shape[1]
        past = cache.get_seq_length()
        first_returned = tokens - min(self.returned_tokens or tokens, tokens)  # positions before it are not returned
        hidden = None  # [B, T - first_returned, H], written in place chunk by chunk (no concatenation copy)
        layer_states = []  # per chunk, the per-layer hidden states when output_hidden_states asked for them
        cache.begin_chunked_prefill(past + tokens)
        try:
            for begin in range(0, tokens, chunk):
                end = min(begin + chunk, tokens)
                output = self.forward(**_chunk_arguments(kwargs, begin, end, past))
                state = output.last_hidden_state
                if hidden is None:
                    hidden = state.new_empty((state.shape[0], tokens - first_returned, *state.shape[2:]))
                if end > first_returned:
                    skipped = max(first_returned - begin, 0)
                    hidden[:, begin + skipped - first_returned : end - first_returned] = state[:, skipped:]
                if output.get("hidden_states") is not None:
                    layer_states.append(output.hidden_states)
        finally:
            cache.end_chunked_prefill()  # the label channels from the whole prompt, as one forward chooses them
        output.last_hidden_state = hidden
        if layer_states:
            output.hidden_states = tuple(torch.cat(parts, dim=1) for parts in zip(*layer_states, strict=True))
        return output


class LastTokensHint:
    """Wraps a causal LM's forward: while a call asks for the logits of its last k positions only (logits_to_keep
    = k >= 1, no labels, no hidden states returned), the decoder's ChunkedPrefill returns those positions only."""

    def __init__(self, forward, chunked: ChunkedPrefill, output_hidden_states_default: bool):
        self.forward = forward
        self.chunked = chunked
        self.output_hidden_states_default = output_hidden_states_default
        functools.update_wrapper(self, forward, updated=())  # not the wrapped object's __dict__

    def __call__(self, *args, **kwargs):
        keep = kwargs.get("logits_to_keep")
        hidden_states = kwargs.get("output_hidden_states")
        if hidden_states is None:
            hidden_states = self.output_hidden_states_default
        if isinstance(keep, int) and keep >= 1 and kwargs.get("labels") is None and not hidden_states:
            self.chunked.returned_tokens = keep
        try:
            return self.forward(*args, **kwargs)
        finally:
            self.chunked.returned_tokens = None


def prefill_working_bytes(
    hidden_size: int,
    intermediate_size: int,
    batch: int,
    tokens: int,
    chunk: int,
    dtype: torch.dtype,
    returned_tokens: int | None = None,
) -> tuple[int, int]:
    """GPU bytes a chunked prefill of `tokens` tokens per row needs beside the weights and the cache, as
    (on every device holding layers, one chunk's working memory; on the device of the last layer, the last hidden
    states [B, k, H] that the decoder returns: k = returned_tokens, or every token). A chunk of c tokens: its
    MLP's gate, up and their product [B, c, I] each, about eight hidden-sized tensors [B, c, H] (residual stream,
    norms, attention input and output); what its attention allocates is the model family's
    (ModelFamily.prefill_attention_bytes)."""
    activations = batch * min(chunk, tokens) * (3 * intermediate_size + 8 * hidden_size) * dtype.itemsize
    returned = min(returned_tokens or tokens, tokens)
    return activations, batch * returned * hidden_size * dtype.itemsize


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

