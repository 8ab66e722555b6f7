"""CUDA-graph decode: a patched model's whole decode forward captured once per batch shape, then replayed.

Why our own capture rather than transformers' compiled generation: torch.compile would have to trace the cache,
the offload engine and every Triton kernel (as custom ops) and recompiles on shape changes, while the decode step
is already free of host synchronization and, with a static cache, of data-dependent shapes; capturing it as it
runs needs none of that and captures exactly the kernels the eager step runs.

The runner wraps the model's forward. A call is replayed from a graph when it is a sparse decode step (one new
token per row, the context past the token budget) of an AsyncTLSCache built with max_length (generate() builds
it so), on one CUDA device, with config.cuda_graph. The first such call per batch shape runs eagerly (it compiles
the kernels), the second is captured and replayed, later ones copy their inputs into the graph's buffers and
replay. The host ints a step advances (layer lengths, counters) are advanced by the runner after each replay; every
device-side value a step reads that changes per step comes from the cache's step_length tensor, which the runner
sets before each replay. With the cache offloaded, the copies the step issues on the copy stream are captured too
(forked from the step by events, joined at its end, so each replay ends with its copies landed; the copy wait is
not timed when replayed). Where replay is impossible the step runs eagerly, with one GraphFallbackWarning per cache
naming why (beam search, a cache without max_length, ...); a failed capture leaves the cache as it was.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

import torch

from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.offload.pinned import release_deferred

_STEP_INPUTS = ("input_ids", "position_ids", "cache_position")  # tensors a decode step reads, copied per replay
_IGNORED_INPUTS = ("attention_mask",)  # the AsyncTLS forward reads padding from the cache, not from the mask


class GraphFallbackWarning(UserWarning):
    """AsyncTLS decodes eagerly where config.cuda_graph asked for CUDA-graph replay."""


@dataclass
class StepGraph:
    """A captured decode step of `cache`: replaying `graph` runs the step and writes the tensors of `output`;
    host_before / host_after are the cache's host step state (layer lengths, counters) around it."""

    graph: torch.cuda.CUDAGraph
    output: object
    host_before: tuple
    host_after: tuple

    def replay(self, cache: AsyncTLSCache) -> None:
        """Run the step once more, one token further: set the cache's step length, replay, advance the host state."""
        cache.step_length(cache.layers[0].device).fill_(cache.get_seq_length() + 1)
        self.graph.replay()
        cache.advance_host_step_state(self.host_before, self.host_after)
        cache.graph_replays += 1


def capture_decode_step(cache: AsyncTLSCache, run_step, pool=None) -> StepGraph:
    """Capture run_step() (a decode step of every layer of `cache`, a static cache on one CUDA device, past its
    token budget) without running it: the cache is left as it was, and StepGraph.replay runs the step. The copies
    an offloaded cache issues on its copy stream are captured too, joined at the end. Raises what capture raises,
    the cache restored."""
    device = cache.layers[0].device
    cache.step_length(device).fill_(cache.get_seq_length() + 1)
    cache.attended_sum(device)
    host_before = cache.host_step_state()
    cache.restore_host_step_state(host_before)  # clears the per-step plans: the graph computes its own
    cache.finish_copies()  # a captured step must not wait on copies issued outside it
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.device(device), torch.cuda.graph(graph, pool=pool):
            output = run_step()
            cache.join_copies()
    except Exception:
        cache.restore_host_step_state(host_before)
        raise
    finally:
        release_deferred()  # host memory the garbage collector freed during capture
    host_after = cache.host_step_state()
    cache.restore_host_step_state(host_before)  # replay() advances it
    return StepGraph(graph, output, host_before, host_after)


@dataclass
class CapturedStep:
    """A captured decode step of a model's forward: `graph` reads `inputs` (static buffers) and the cache's
    tensors; `storage` holds the cache tensors it reads, to notice when they are replaced."""

    graph: StepGraph
    inputs: dict[str, torch.Tensor]
    storage: tuple[torch.Tensor, ...]


def _cache_of(kwargs: dict) -> AsyncTLSCache | None:
    cache = kwargs.get("cache", kwargs.get("past_key_values"))
    return cache if isinstance(cache, AsyncTLSCache) else None


def _storage_of(cache: AsyncTLSCache) -> tuple[torch.Tensor, ...]:
    """The tensors whose replacement invalidates a captured step (every layer reallocates its labels whenever it
    reallocates anything; row_start is replaced by a new prompt)."""
    return (cache.row_start, *(layer.label_codes for layer in cache.layers))


class DecodeGraphs:
    """Wraps a model's forward: decode steps of a static AsyncTLSCache on CUDA are replayed from CUDA graphs."""

    def __init__(self, model: torch.nn.Module, forward):
        self.model = model
        self.forward = forward
        # generate() reads the forward's signature to decide which inputs it passes (position_ids, cache_position):
        # the wrapper must show the model's own.
        functools.update_wrapper(self, forward, updated=())  # not the wrapped object's __dict__

    def __call__(self, *args, **kwargs):
        cache = _cache_of(kwargs)
        if args or cache is None or not cache.config.cuda_graph:
            return self.forward(*args, **kwargs)
        key, reason = self._step_key(cache, kwargs)
        if key is None:
            if reason is not None:
                self._fall_back(cache, reason)
            return self.forward(*args, **kwargs)
        step = cache.decode_graphs.get(key)
        if step is None or not all(a is b for a, b in zip(step.storage, _storage_of(cache), strict=True)):
            if step is None and key not in cache.decode_graphs:
                cache.decode_graphs[key] = None  # the first step of this shape runs eagerly: it compiles the kernels
                return self.forward(**kwargs)
            step = self._capture(cache, kwargs)
            if step is None:
                return self.forward(**kwargs)
            cache.decode_graphs[key] = step
        else:
            for name, buffer in step.inputs.items():
                buffer.copy_(kwargs[name])
        step.graph.replay(cache)
        return _fresh_output(step.graph.output)

    def _step_key(self, cache: AsyncTLSCache, kwargs: dict) -> tuple[tuple | None, str | None]:
        """(key of the captured step this call can replay, None) or (None, why not: None when the call is simply
        not a replayable decode step, such as prefill or a dense step, and decoding eagerly is expected)."""
        input_ids = kwargs.get("input_ids")
        if input_ids is None or input_ids.dim() != 2 or input_ids.shape[1] != 1 or not input_ids.is_cuda:
            return None, None
        if cache.graph_fallback_reason is not None:
            return None, cache.graph_fallback_reason
        layers = cache.layers
        if not all(layer.is_initialized for layer in layers) or cache.row_start is None:
            return None, None
        if cache.block_recorder is not None:
            return None, None  # recording the kept blocks calls back into Python at every step
        if cache.max_length is None:
            return None, (
                "the cache has no max_length (it is not static); let generate() build it, or pass "
                "AsyncTLSCache.for_model(model, max_length=prompt + max_new_tokens)"
            )
        devices = {layer.device for layer in layers}
        if len(devices) > 1:
            return None, "the cache's layers are on several devices"
        length = cache.get_seq_length()
        if length + 1 <= cache.config.token_budget or not all(
            layer.can_append_in_place(cache.row_start.to(layer.device)) for layer in layers
        ):
            return None, None  # a dense step, or past max_length: eager, as expected
        if max(cache._row_start_host) >= length:
            return None, None  # a row holds only padding so far
        if all(kwargs.get(name) is None for name in ("position_ids", "cache_position")):
            return None, (
                "the forward got neither position_ids nor cache_position: the model would compute the positions "
                "from host ints, which a captured step would freeze"
            )
        names, settings = [], []
        for name, value in sorted(kwargs.items()):
            if name in ("cache", "past_key_values") or name in _IGNORED_INPUTS or value is None:
                continue
            if isinstance(value, torch.Tensor):
                if name not in _STEP_INPUTS:
                    return None, f"the forward got a tensor argument {name!r} a captured step cannot take"
                names.append((name, tuple(value.shape), value.dtype))
            elif name in ("output_attentions", "output_hidden_states") and value:
                return None, f"{name}=True"
            else:
                settings.append((name, repr(value)))
        return (tuple(names), tuple(settings)), None

    def _capture(self, cache: AsyncTLSCache, kwargs: dict) -> CapturedStep | None:
        """Capture this call's decode step (not yet run: replaying the graph runs it); None, with a warning and
        the cache as it was, when capture fails."""
        if _eager_experts(self.model):  # checked once per capture: walking the modules every step would cost
            self._fall_back(cache, "the model's MoE experts run eagerly (data-dependent shapes); "
                            "model.set_experts_implementation('grouped_mm') or 'batched_mm' makes the step capturable")
            return None
        inputs = {name: kwargs[name].clone() for name in _STEP_INPUTS if kwargs.get(name) is not None}
        captured_kwargs = {**kwargs, **inputs}
        for name in _IGNORED_INPUTS:
            captured_kwargs.pop(name, None)
        pool = next((step.graph.graph.pool() for step in cache.decode_graphs.values() if step is not None), None)
        try:
            step = capture_decode_step(cache, lambda: self.forward(**captured_kwargs), pool)
        except Exception as error:  # noqa: BLE001 - any capture failure falls back to eager decoding
            self._fall_back(cache, f"capturing the decode step failed ({type(error).__name__}: {error})")
            return None
        return CapturedStep(step, inputs, _storage_of(cache))

    @staticmethod
    def _fall_back(cache: AsyncTLSCache, reason: str) -> None:
        """Decode this cache eagerly from now on; warn once per cache."""
        if cache.graph_fallback_reason is None:
            cache.graph_fallback_reason = reason
        if not cache.graph_fallback_warned:
            cache.graph_fallback_warned = True
            warnings.warn(f"AsyncTLS decodes eagerly, not from a CUDA graph: {cache.graph_fallback_reason}",
                          GraphFallbackWarning,
                          stacklevel=3)


def _eager_experts(model: torch.nn.Module) -> bool:
    """Whether a MoE experts module of `model` runs transformers' eager experts loop (host syncs, uncapturable)."""
    return any(
        type(module).__name__.endswith("Experts")
        and getattr(getattr(module, "config", None), "_experts_implementation", None) == "eager"
        for module in model.modules()
    )


def _fresh_output(output):
    """A copy of a captured step's output whose tensors the next replay will not overwrite."""
    return type(output)(**{name: value.clone() if isinstance(value, torch.Tensor) else value
                           for name, value in output.items()})
