"""AsyncTLSConfig: every knob of the method, validated when it is built."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

_OFFLOAD_CHOICES = (False, True, "auto")
OFFLOAD_GRANULARITY_CHOICES = ("block", "token")
BACKEND_CHOICES = ("auto", "torch", "triton")
LABEL_BITS_CHOICES = (4, 8, 16)
TOKEN_SCORING_CHOICES = ("head_mass", "summed")


def default_label_channels(key_width: int, latent: bool = False) -> int:
    """A quarter of the key width rounded down to a power of two (128 -> 32, 64 -> 16); for latent keys (MLA: the
    compressed latent and the rope part, one key for every head) a third of it rounded down to an even number
    (576 -> 192, 192 -> 64): on the GLM probe labels on a quarter lost needles that a third kept (EVAL.md, "What
    closes the GLM probe's gap"), at no measured cost to GLM-4.7-Flash's decode step (BENCHMARKS.md)."""
    if latent:
        return min(max(key_width // 3 // 2 * 2, 2), key_width)
    quarter = max(key_width // 4, 2)
    return min(1 << (quarter.bit_length() - 1), key_width)


def default_token_scoring(latent: bool = False) -> str:
    """"head_mass" for latent keys (MLA: every head of a layer shares one selection; on the GLM probe the summed
    query lost needles that one head found, and head mass took them back), "summed" for GQA keys (on the Qwen3 probe
    head mass gained nothing, and it costs the decode step more; EVAL.md and BENCHMARKS.md, "Token selection by
    head mass")."""
    return "head_mass" if latent else "summed"


@dataclass(frozen=True)
class AsyncTLSConfig:
    """Settings of two-level sparse decoding.

    block_size: tokens per block for block filtering (Quest-style min/max summaries).
    top_blocks: blocks kept by block filtering, per KV group and decode step.
    token_budget: tokens attended per KV group and decode step, sinks and local window included.
        A context of at most this many tokens is attended densely (exactly the unpatched result).
    label_channels: key channels kept in each token's label; None picks a quarter of the key
        width rounded down to a power of two (32 of 128 for Qwen3), a third for MLA's latent keys (192 of 576
        for GLM-4.7-Flash; default_label_channels).
    label_bits: bits per label channel: 4 (packed two per byte), 8, or 16 (the key's own dtype).
    token_scoring: how token selection ranks a group's candidates from their labels: "summed" (the label score of
        the query summed over the group's heads) or "head_mass" (the attention mass the heads would give the
        candidate, each head's softmax over the candidates of its own label scores, summed over the heads; one head
        that singles out a token is heard over heads with larger query norms). None picks head_mass for MLA's
        latent keys (one group holds every head: 20 in GLM-4.7-Flash) and summed for GQA (4 heads a group in
        Qwen3-8B), as measured (EVAL.md, "Token selection by head mass"; default_token_scoring).
    sink_tokens: first real tokens of each row, always attended.
    local_tokens: most recent tokens, always attended.
    offload: keep the full KV cache in pinned CPU memory (True), never (False), or when needed ("auto": when
        the resident cache would not leave a reserve for activations free on the GPU).
    prefetch_lag: with offload, 0 (exact: the misses are copied before they are used; the results equal
        offload=False) or 1 (the paper's asynchronous mode: step t attends over what the steps before it made
        resident, while what step t chose and lacks is copied for step t+1; faster, and not exact: EVAL.md,
        "Offloaded decoding with a one-step lag").
    offload_granularity: with offload, what the device slots hold and the copies move: "token" (top_blocks *
        block_size token slots per group, taken first in, first out: token selection picks among every wanted
        block's tokens, and only the picked tokens a step lacks are copied, a fraction of the bytes of whole
        blocks; with lag 1 a step attends over the picked tokens already resident) or "block" (the paper's
        protocol above: whole blocks, top_blocks slots per group; with lag 1 token selection picks among the
        blocks wanted at the step before that are resident).
    prefetch_successors: with offload by tokens and prefetch_lag 1, also copy for the next step this many tokens that
        follow each selected one (a model copying a span from the context reads its tokens one step apart;
        with 0 such a token is missing from the very step that first picks it: EVAL.md, "Offloaded decoding with a
        one-step lag").
    backend: "torch" (reference ops), "triton" (kernels) or "auto" (Triton on CUDA, torch elsewhere).
    cuda_graph: on a CUDA device, capture the decode step (the whole model forward) in a CUDA graph once per
        batch size and replay it, when the cache is static (generate() builds it so: it knows the maximum length);
        where capture is impossible (beam search, a cache without max_length) decoding stays eager with a warning.
    prefill_chunk_size: prompt tokens per prefill chunk: a longer prompt runs through the whole model one chunk at
        a time (its attention dense over the cache so far), so activations scale with the chunk, not the prompt.
    """

    block_size: int = 64
    top_blocks: int = 128
    token_budget: int = 1024
    label_channels: int | None = None
    label_bits: int = 4
    token_scoring: str | None = None
    sink_tokens: int = 16
    local_tokens: int = 64
    offload: bool | str = False
    prefetch_lag: int = 0
    offload_granularity: str = "token"
    prefetch_successors: int = 1
    backend: str = "auto"
    cuda_graph: bool = True
    prefill_chunk_size: int = 2048

    def __post_init__(self) -> None:
        for name in ("block_size", "top_blocks", "token_budget", "prefill_chunk_size"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("sink_tokens", "local_tokens", "prefetch_successors"):
            _check_int(name, getattr(self, name), minimum=0)
        if self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two, got {self.block_size}")
        if self.label_channels is not None:
            _check_int("label_channels", self.label_channels, minimum=1)
        if self.label_bits not in LABEL_BITS_CHOICES or isinstance(self.label_bits, bool):
            raise ValueError(f"label_bits must be one of {LABEL_BITS_CHOICES}, got {self.label_bits!r}")
        if self.label_bits == 4 and self.label_channels is not None and self.label_channels % 2:
            raise ValueError(
                f"label_channels must be even when label_bits=4 (two 4-bit codes per byte), got {self.label_channels}"
            )
        if self.token_scoring is not None and self.token_scoring not in TOKEN_SCORING_CHOICES:
            raise ValueError(
                f"token_scoring must be one of {TOKEN_SCORING_CHOICES}, got {self.token_scoring!r}"
            )
        if self.sink_tokens + self.local_tokens > self.token_budget:
            raise ValueError(
                f"sink_tokens + local_tokens ({self.sink_tokens} + {self.local_tokens}) must fit inside "
                f"token_budget ({self.token_budget}); lower them or raise token_budget"
            )
        if self.top_blocks * self.block_size < self.selected_tokens:
            raise ValueError(
                f"top_blocks * block_size ({self.top_blocks} * {self.block_size}) must cover the "
                f"{self.selected_tokens} tokens that token selection picks "
                "(token_budget - sink_tokens - local_tokens); raise top_blocks"
            )
        if (self.offload is not False and self.offload_granularity == "token" and self.prefetch_lag == 1
                and (1 + self.prefetch_successors) * self.selected_tokens > self.top_blocks * self.block_size):
            raise ValueError(
                f"offloaded by tokens with prefetch_lag=1, the {self.selected_tokens} selected tokens and their "
                f"{self.prefetch_successors} successors each must fit the top_blocks * block_size "
                f"({self.top_blocks} * {self.block_size}) token slots; lower prefetch_successors or raise top_blocks"
            )
        if not any(self.offload is choice for choice in _OFFLOAD_CHOICES):
            raise ValueError(f"offload must be False, True or 'auto', got {self.offload!r}")
        if isinstance(self.prefetch_lag, bool) or self.prefetch_lag not in (0, 1):
            raise ValueError(f"prefetch_lag must be 0 (exact) or 1 (asynchronous), got {self.prefetch_lag!r}")
        if self.offload_granularity not in OFFLOAD_GRANULARITY_CHOICES:
            raise ValueError(
                f"offload_granularity must be one of {OFFLOAD_GRANULARITY_CHOICES}, got {self.offload_granularity!r}"
            )
        if not isinstance(self.cuda_graph, bool):
            raise ValueError(f"cuda_graph must be True or False, got {self.cuda_graph!r}")
        if self.backend not in BACKEND_CHOICES:
            raise ValueError(f"backend must be one of {BACKEND_CHOICES}, got {self.backend!r}")

    @property
    def selected_tokens(self) -> int:
        """Tokens picked by token selection per group and step (the budget minus sinks and local window)."""
        return self.token_budget - self.sink_tokens - self.local_tokens

    def label_channels_for(self, key_width: int, latent: bool = False) -> int:
        """The label width for keys `key_width` wide (`latent`: MLA's latent keys); raises if the configured width
        does not fit."""
        channels = (self.label_channels if self.label_channels is not None
                    else default_label_channels(key_width, latent))
        if channels > key_width:
            raise ValueError(f"label_channels ({channels}) must not exceed the model's key width ({key_width})")
        return channels

    def token_scoring_for(self, latent: bool = False) -> str:
        """How token selection ranks candidates for latent (MLA) or GQA keys: the configured token_scoring, or
        default_token_scoring."""
        return self.token_scoring if self.token_scoring is not None else default_token_scoring(latent)

    def replace(self, **overrides) -> AsyncTLSConfig:
        """A copy with some fields changed (validated again)."""
        unknown = set(overrides) - {field.name for field in dataclasses.fields(self)}
        if unknown:
            names = ", ".join(sorted(unknown))
            known = ", ".join(field.name for field in dataclasses.fields(self))
            raise ValueError(f"unknown AsyncTLSConfig option(s): {names}; the options are: {known}")
        return dataclasses.replace(self, **overrides)


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
