"""AsyncTLSCache: a transformers Cache holding one AsyncTLSLayer per decoder layer."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from transformers.cache_utils import Cache

from asynctls_hf.cache.layer import AsyncTLSLayer
from asynctls_hf.cache.offloaded import window_positions
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.offload import CudaStreamTransport, Placement, SyncTransport, Transport, plan_placement
from asynctls_hf.offload.plan import CacheMemoryError, device_usable, free_device_memory, host_available_memory
from asynctls_hf.ops.triton_common import multiprocessor_count

__all__ = ["AsyncTLSCache", "CacheMemoryError", "DecodePlan", "LayerGeometry", "free_device_memory"]


# recorder(layer_idx, kept_blocks [B, NG, Kb] int64, kept_valid [B, NG, Kb] bool), see AsyncTLSCache.block_recorder.
KeptBlocksRecorder = Callable[[int, torch.Tensor, torch.Tensor], None]


@dataclass(frozen=True)
class LayerGeometry:
    """What one layer caches per token: NG groups of keys Dk wide and values Dv wide."""

    num_groups: int
    key_width: int
    value_width: int
    values_in_keys: bool = False


@dataclass
class DecodePlan:
    """Per-step metadata, planned once per decode step and device and shared by all layers.

    length: slots in use (the new token included); dense: whether the whole context fits the budget;
    new_slot: 0-dim int64 on the device, the new token's slot (length - 1).
    row_start [B]; key_valid [B, length] (dense only); block_valid [B, n_blocks] (blocks holding at least one
    candidate slot); candidate_low [B] and candidate_high [B] bound the slots token selection may pick;
    fixed_slots, fixed_valid [B, sink + local]: the sinks and the local window, always attended;
    window_positions [B, sink + local] (offloaded caches only): where those tokens sit in an offloaded layer's device
    window (OffloadedKV), the same for every layer.
    """

    length: int
    dense: bool
    new_slot: torch.Tensor
    row_start: torch.Tensor
    key_valid: torch.Tensor | None
    n_blocks: int
    block_valid: torch.Tensor | None
    candidate_low: torch.Tensor | None
    candidate_high: torch.Tensor | None
    fixed_slots: torch.Tensor | None
    fixed_valid: torch.Tensor | None
    window_positions: torch.Tensor | None = None


# Lag 1's copies on the side stream take at most 1 / COPY_SM_SHARE of the SMs (one program each): uncapped, the
# copy kernel's hundreds of programs per layer crowd out the compute beside them (Qwen3-8B graphed step at 96k,
# batch 4, H200: 14.32 ms uncapped, 11.95-12.57 ms at 24-48 programs, resident 10.60-10.95; BENCHMARKS.md,
# "Lag 1's copies capped").
COPY_SM_SHARE = 5


def side_copy_programs(device: torch.device) -> int:
    """The default cap on a side-stream copy launch's programs on `device`: a fifth of its SMs."""
    return max(1, multiprocessor_count(device) // COPY_SM_SHARE)


def default_transport(device: torch.device, side_stream: bool = True, graph_only: bool = False,
                      copy_programs: int | None = None) -> Transport:
    """How offloaded layers on `device` copy blocks: a CudaStreamTransport on CUDA (with one copy stream, used only
    inside CUDA-graph captures when `graph_only`; or with side_stream False none: copies and store writes on the
    current stream), synchronous copies elsewhere. Each copy launch's grid is capped at `copy_programs`; by default,
    with a side stream, at a fifth of the SMs (COPY_SM_SHARE), so that the copies leave the rest to the compute beside
    them; without one (exact mode: nothing runs beside the copies) uncapped."""
    if device.type != "cuda":
        return SyncTransport()
    if copy_programs is None and side_stream:
        copy_programs = side_copy_programs(device)
    return CudaStreamTransport(device, side_stream=side_stream, graph_only=graph_only, copy_programs=copy_programs)


class AsyncTLSCache(Cache):
    """KV cache for two-level sparse decoding.

    Build it for a model with `AsyncTLSCache.for_model(model)` (a patched model builds one itself when
    generate() or forward() gets no cache). `max_length`, when known, preallocates storage once.
    Rows must be left-padded: the padding of the first forward's attention mask fixes each row's first
    real slot (`row_start`).

    Placement: with config.offload True every layer keeps its K/V in pinned host memory; with "auto",
    `plan_placement` (which generate() calls before prefill, knowing the batch and max_length) decides; a cache
    never planned stays resident under "auto". Offloaded layers on a device share one transport, made by
    `transport_factory(device)` (default_transport: a CudaStreamTransport on CUDA, with one copy stream for
    prefetch_lag 1 and none in exact mode, whose copies run on the compute stream anyway: a side stream's eager use
    slows every later CUDA-graph step of the process, CudaStreamTransport; with config.cuda_graph the copy stream
    runs only inside captured steps; synchronous copies on a CPU device, the tests).

    `block_recorder`, None unless set, is called at each sparse decode step of each layer (after block
    filtering) as block_recorder(layer_idx, kept_blocks, kept_valid): kept_blocks [B, NG, Kb] are the block
    indices each group kept, and kept_valid [B, NG, Kb] is False where the top-k had to fill up with blocks that
    hold no candidate slot. The tensors stay on the device; nothing synchronizes unless the recorder does. Dense
    steps (the context fits the budget) and configurations without token selection keep no blocks.
    """

    def __init__(
        self,
        layer_geometry: list[LayerGeometry],
        config: AsyncTLSConfig | None = None,
        max_length: int | None = None,
        *,
        transport_factory: Callable[[torch.device], Transport] | None = None,
    ):
        self.config = config if config is not None else AsyncTLSConfig()
        self.transport_factory = transport_factory or functools.partial(
            default_transport, side_stream=self.config.prefetch_lag > 0, graph_only=self.config.cuda_graph)
        self.max_length = max_length
        super().__init__(
            layers=[
                AsyncTLSLayer(
                    self.config,
                    geometry.num_groups,
                    geometry.key_width,
                    geometry.value_width,
                    geometry.values_in_keys,
                    max_length,
                )
                for geometry in layer_geometry
            ]
        )
        self.row_start: torch.Tensor | None = None
        self._row_start_host: list[int] = []
        self._plans: dict[torch.device, DecodePlan] = {}
        self._step_lengths: dict[torch.device, torch.Tensor] = {}
        self._attended_sums: dict[torch.device, torch.Tensor] = {}
        self.block_recorder: KeptBlocksRecorder | None = None
        self._transports: dict[torch.device, Transport] = {}
        # Why this cache's decode steps cannot be replayed from a CUDA graph (None: nothing known against it).
        self.graph_fallback_reason: str | None = None
        self.graph_fallback_warned = False
        self.decode_graphs: dict = {}  # asynctls_hf.graphs' captured steps of this cache, by batch and inputs
        # What plan_placement decided for: (the placement, its batch, K/V dtype and each layer's device).
        self.planned: tuple[Placement, int, torch.dtype, list[torch.device]] | None = None
        if self.config.offload is True:
            self._place_layers(True)
        self.reset_stats()

    def _transport_for(self, device: torch.device) -> Transport:
        if device not in self._transports:
            self._transports[device] = self.transport_factory(device)
        return self._transports[device]

    def _place_layers(self, offload: bool) -> None:
        for layer in self.layers:
            layer.place(offload, self._transport_for)

    @property
    def offloaded(self) -> bool:
        return any(layer.offload for layer in self.layers)

    def plan_placement(
        self,
        batch: int,
        dtype: torch.dtype,
        layer_devices: list[torch.device],
        prefill_bytes: dict[torch.device, int] | None = None,
    ) -> Placement:
        """Decide, before anything is allocated, where the cache of `batch` rows of up to `max_length` slots (K/V in
        `dtype`, layer i on layer_devices[i]) goes under config.offload, place the layers accordingly, and return
        the placement. `prefill_bytes`: per device, the prefill's working memory beside the cache
        (asynctls_hf.prefill.prefill_working_bytes and ModelFamily.prefill_attention_bytes); an offloaded layer's
        prefill attention also reads its whole context onto the device, counted here. Raises CacheMemoryError,
        naming what is needed, what is free and which setting to change, when it does not fit the devices' free
        memory or the available host memory."""
        if self.max_length is None:
            raise ValueError("plan_placement needs the cache's max_length")
        resident = dict(prefill_bytes or {})
        offloaded = dict(prefill_bytes or {})
        context_copy: dict[torch.device, int] = {}  # the largest offloaded layer context read for prefill attention
        host = 0
        for layer, device in zip(self.layers, layer_devices, strict=True):
            resident[device] = resident.get(device, 0) + layer.storage_bytes(batch, self.max_length, dtype)
            offloaded[device] = offloaded.get(device, 0) + layer.storage_bytes(
                batch, self.max_length, dtype, offload=True
            )
            layer_host = layer.host_bytes(batch, self.max_length, dtype)
            context_copy[device] = max(context_copy.get(device, 0), 2 * layer_host)  # read, then concatenated
            host += layer_host
        for device, copy_bytes in context_copy.items():
            offloaded[device] += copy_bytes
        placement = plan_placement(
            resident, offloaded, host, self.config.offload,
            what=f"the AsyncTLS cache for {batch} sequence(s) of up to {self.max_length} tokens ({dtype})",
            device_free={device: free_device_memory(device) for device in resident},
            host_free=host_available_memory(),
        )
        self._place_layers(placement.offload)
        self.planned = (placement, batch, dtype, list(layer_devices))
        return placement

    @classmethod
    def for_model(cls, model, config: AsyncTLSConfig | None = None, max_length: int | None = None) -> AsyncTLSCache:
        """A cache shaped for `model` (patched or not); `config` defaults to the one the model was patched with."""
        from asynctls_hf.patches import family_for

        family = family_for(model.config)
        if config is None:
            state = getattr(model, "_asynctls_state", None)
            config = state.config if state is not None else AsyncTLSConfig()
        return cls(family.layer_geometry(model.config.get_text_config(decoder=True)), config, max_length)

    # ---- padding -------------------------------------------------------------------------------------

    @property
    def row_start_host(self) -> list[int]:
        """row_start on the host: each row's first real slot (read without a device synchronization)."""
        return self._row_start_host

    def observe_attention_mask(
        self, attention_mask: torch.Tensor | None, batch_size: int, new_tokens: int, device: torch.device
    ) -> None:
        """Record each row's first real slot from a 2D mask [B, past + new] on the first forward; check later ones.

        Raises ValueError for right padding or holes, which AsyncTLS does not support.
        """
        past = self.get_seq_length()
        if attention_mask is None:
            if self.row_start is None:
                self.row_start = torch.zeros(batch_size, dtype=torch.long, device=device)
                self._row_start_host = [0] * batch_size
            return
        if attention_mask.dim() != 2:
            raise ValueError(
                f"AsyncTLS needs a 2D attention mask [batch, length], got shape {tuple(attention_mask.shape)}"
            )
        if self.row_start is not None and new_tokens == 1 and max(self._row_start_host) < past:
            return  # a decode step after every row has real tokens: checking the mask would synchronize
        mask = attention_mask.to(torch.bool)
        pad_count = (~mask).sum(dim=1)
        left_padded = torch.arange(mask.shape[1], device=mask.device)[None, :] >= pad_count[:, None]
        if not torch.equal(mask, left_padded):
            raise ValueError(
                "AsyncTLS supports left padding only (zeros then ones in each row of attention_mask); "
                "set tokenizer.padding_side = 'left'"
            )
        pad_count = pad_count.to(device)
        if self.row_start is not None and past > 0:
            # Only a row that so far held nothing but padding may have more of it (a chunked, left-padded prefill).
            still_padding = (self.row_start == past) & (pad_count >= past)
            if not torch.equal(torch.where(still_padding, pad_count, self.row_start), pad_count):
                raise ValueError(
                    "the attention mask's padding changed after real tokens were cached; pass the mask of the whole "
                    "sequence, left-padded as in the prompt"
                )
        self.row_start = pad_count
        self._row_start_host = pad_count.tolist()

    # ---- per-step metadata ---------------------------------------------------------------------------

    def step_length(self, device: torch.device) -> torch.Tensor:
        """The 0-dim int64 tensor on `device` holding the current decode step's length (set by decode_plan, or
        by a CUDA graph's runner before each replay: a captured step reads it, never a host int)."""
        step = self._step_lengths.get(device)
        if step is None:
            step = self._step_lengths[device] = torch.zeros((), dtype=torch.long, device=device)
        return step

    def decode_plan(self, length: int, device: torch.device) -> DecodePlan:
        """The metadata of the decode step whose context is `length` slots, computed once per step and device.

        A sparse step's tensors are computed on the device from step_length(device), so the step can be captured
        in a CUDA graph and replayed at any length (the shapes depend only on max_length and the config).
        """
        plan = self._plans.get(device)
        if plan is not None and plan.length == length:
            return plan
        config = self.config
        step_length = self.step_length(device)
        if not (device.type == "cuda" and torch.cuda.is_current_stream_capturing()):
            step_length.fill_(length)  # under capture the runner has set it, and sets it before every replay
        # A row holding only padding so far (a chunked, left-padded prefill fed token by token) lets its newest
        # slot attend to itself, so that no query sees an empty set (softmax of nothing is NaN, which would
        # reach real tokens through the pad slot's cached values).
        last_slot = step_length - 1
        row_start = torch.minimum(self.row_start.to(device), last_slot)
        if length <= config.token_budget:
            slots = torch.arange(length, device=device)
            plan = DecodePlan(
                length, True, last_slot, row_start, slots[None, :] >= row_start[:, None], 0, None, None, None,
                None, None,
            )
        else:
            block_size = config.block_size
            batch = len(row_start)
            # With a known maximum length every step scores the same number of blocks (the ones past the
            # context are masked), so the shapes of a decode step do not change from step to step.
            n_blocks = -(-max(length, self.max_length or 0) // block_size)
            candidate_low = row_start + config.sink_tokens
            candidate_high = (step_length - config.local_tokens).view(1).expand(batch).contiguous()
            block_begin = torch.arange(n_blocks, device=device) * block_size
            block_valid = (block_begin[None, :] + block_size > candidate_low[:, None]) & (
                block_begin[None, :] < candidate_high[:, None]
            )
            sink_slots = row_start[:, None] + torch.arange(config.sink_tokens, device=device)[None, :]
            sink_valid = sink_slots < step_length
            local_slots = (step_length - config.local_tokens + torch.arange(config.local_tokens, device=device))[
                None, :
            ].expand(batch, -1)
            local_valid = local_slots >= candidate_low[:, None]
            fixed_slots = torch.cat([torch.minimum(sink_slots, last_slot), local_slots.clamp(min=0)], dim=1)
            plan = DecodePlan(
                length,
                False,
                last_slot,
                row_start,
                None,
                n_blocks,
                block_valid,
                candidate_low,
                candidate_high,
                fixed_slots,
                torch.cat([sink_valid, local_valid], dim=1),
                window_positions(config, fixed_slots) if self.offloaded else None,
            )
        self._plans[device] = plan
        return plan

    # ---- statistics ----------------------------------------------------------------------------------

    def reset_stats(self) -> None:
        """Zero the counters of stats() (the offload engines' included)."""
        for attended_sum in self._attended_sums.values():
            attended_sum.zero_()  # in place: a captured decode step adds to these very tensors
        self._attended_groups = 0
        self.graph_replays = 0  # decode steps replayed from a CUDA graph
        self._decode_calls = {"dense": 0, "sparse": 0}
        for layer in self.layers:
            if layer.offloaded is not None:
                layer.offloaded.engine.reset_stats()

    def attended_sum(self, device: torch.device) -> torch.Tensor:
        """The 0-dim float64 tensor on `device` summing the tokens attended there (record_decode adds in place)."""
        attended_sum = self._attended_sums.get(device)
        if attended_sum is None:
            attended_sum = self._attended_sums[device] = torch.zeros((), dtype=torch.float64, device=device)
        return attended_sum

    def record_decode(self, attended_per_group: torch.Tensor, dense: bool) -> None:
        """Add one layer's decode step: attended_per_group [B, NG] (or [B, 1]) tokens attended by each group."""
        self.attended_sum(attended_per_group.device).add_(attended_per_group.sum(dtype=torch.float64))
        self._attended_groups += attended_per_group.numel()
        self._decode_calls["dense" if dense else "sparse"] += 1

    def stats(self) -> dict:
        """Counters since the cache was built or reset (reading them synchronizes the device).

        attended_tokens: mean tokens attended per KV group (so per head) per layer and decode step;
        offloaded: whether the K/V lives in host memory; h2d_bytes: bytes the offload engines copied host to
        device; context_read_bytes: bytes read back from the host store for prefill attention and dense steps
        (none for an offloaded layer that kept its prompt on the device, begin_chunked_prefill); hit_rate: share
        of wanted blocks (tokens, with offload_granularity "token") already on the device (1.0 when resident);
        copy_wait_seconds: time the compute stream waited on copies (with lag 1; exact mode copies on the compute
        stream itself); graph_replays: decode steps replayed from
        a CUDA graph (asynctls_hf.graphs; 0 when eager); memory_bytes: device storage of all layers;
        host_memory_bytes: pinned host storage; layers (offloaded only): each layer's OffloadEngine.stats().
        """
        attended_sum = sum(float(total) for total in self._attended_sums.values())
        attended = attended_sum / self._attended_groups if self._attended_groups else 0.0
        initialized = [layer for layer in self.layers if layer.is_initialized]
        engines = [layer.offloaded.engine.stats() for layer in initialized if layer.offloaded is not None]
        wanted = sum(engine["wanted_blocks"] for engine in engines)
        stats = {
            "attended_tokens": attended,
            "decode_layer_steps": sum(self._decode_calls.values()),
            "dense_layer_steps": self._decode_calls["dense"],
            "graph_replays": self.graph_replays,
            "sparse_layer_steps": self._decode_calls["sparse"],
            "offloaded": self.offloaded,
            "h2d_bytes": sum(engine["copied_bytes"] for engine in engines),
            "context_read_bytes": sum(
                layer.offloaded.context_read_bytes for layer in initialized if layer.offloaded is not None
            ),
            "hit_rate": sum(engine["hit_blocks"] for engine in engines) / wanted if wanted else 1.0,
            "copy_wait_seconds": sum(engine["wait_seconds"] for engine in engines),
            "memory_bytes": sum(layer.memory_bytes() for layer in initialized),
            "host_memory_bytes": sum(layer.host_memory_bytes() for layer in initialized),
        }
        if engines:
            stats["layers"] = engines
        return stats

    # ---- copies around a captured decode step ---------------------------------------------------------

    def finish_copies(self) -> None:
        """Make the current stream wait for every pending copy of every offloaded layer (before a capture)."""
        for layer in self.layers:
            if layer.offloaded is not None:
                layer.offloaded.engine.finish_pending()

    def join_copies(self) -> None:
        """At the end of a step being captured in a CUDA graph: join the copy streams into the capturing stream and
        forget the pending copies (each replay ends with its copies landed)."""
        for transport in self._transports.values():
            if isinstance(transport, CudaStreamTransport):
                transport.join_capture()
        for layer in self.layers:
            if layer.offloaded is not None:
                layer.offloaded.engine.forget_pending()

    # ---- host-side state of a decode step (what a CUDA graph's replay does not update) -------------------

    def host_step_state(self) -> tuple[list[int], int, dict[str, int]]:
        """(each layer's length, attended groups counted, decode calls counted): the host ints a decode step
        advances."""
        return [layer.length for layer in self.layers], self._attended_groups, dict(self._decode_calls)

    def restore_host_step_state(self, state: tuple[list[int], int, dict[str, int]]) -> None:
        lengths, self._attended_groups, decode_calls = state
        self._decode_calls = dict(decode_calls)
        for layer, length in zip(self.layers, lengths, strict=True):
            layer.length = length
        self._plans.clear()

    def advance_host_step_state(
        self, before: tuple[list[int], int, dict[str, int]], after: tuple[list[int], int, dict[str, int]]
    ) -> None:
        """Advance the host ints by what one decode step changed them by (after - before): a replayed step."""
        for layer, length_before, length_after in zip(self.layers, before[0], after[0], strict=True):
            layer.length += length_after - length_before
        self._attended_groups += after[1] - before[1]
        for kind in self._decode_calls:
            self._decode_calls[kind] += after[2][kind] - before[2][kind]
        self._plans.clear()

    # ---- transformers Cache API ----------------------------------------------------------------------

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        raise NotImplementedError(
            "AsyncTLSCache is written by the AsyncTLS attention forward: patch the model with asynctls_hf.patch(model)"
        )

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.layers[layer_idx].length if layer_idx < len(self.layers) else 0

    def get_mask_sizes(self, query_length, layer_idx: int = 0) -> tuple[int, int]:
        if isinstance(query_length, torch.Tensor):
            query_length = query_length.shape[0]
        return self.get_seq_length(layer_idx) + query_length, 0

    def begin_chunked_prefill(self, tokens: int) -> None:
        """Before a prompt is prefilled in chunks (asynctls_hf.prefill), the cache then holding `tokens` tokens per
        row: layers that have not chosen their label channels gather the statistics of every chunk instead of
        choosing them from the first; offloaded layers keep the prompt's K/V on their device too, in layer order as
        far as the free memory beyond the planned placement goes (less its reserve), so that prefill attention
        reads its context there instead of from the host store. end_chunked_prefill undoes both."""
        for layer in self.layers:
            if layer.label_channels is None:
                layer.defer_labels = True
        if self.planned is None or not self.planned[0].offload:
            return
        placement, batch, dtype, devices = self.planned
        spare = {}
        for device, planned_bytes in placement.device_bytes.items():
            free = free_device_memory(device)
            spare[device] = 0 if free is None else device_usable(free) - planned_bytes
        for layer, device in zip(self.layers, devices, strict=True):
            needed = layer.kv_bytes(batch, tokens, dtype)
            if layer.length == 0 and needed <= spare[device]:
                layer.prefill_context_tokens = tokens
                spare[device] -= needed

    def end_chunked_prefill(self) -> None:
        """After the last chunk: choose the label channels from the whole prompt, label every cached token, and
        drop the prompt's K/V kept on the devices."""
        for layer in self.layers:
            layer.write_deferred_labels(self.config.prefill_chunk_size)
            layer.release_prefill_context()

    def reset(self) -> None:
        for layer in self.layers:
            layer.reset()
        self.row_start = None
        self._row_start_host = []
        self._plans.clear()
        self.reset_stats()

    def crop(self, tokens: int) -> None:
        """Drop tokens from the end: `crop(-n)` removes n tokens, `crop(n)` with n >= 0 keeps the first n."""
        length = self.get_seq_length()
        keep = length + tokens if tokens < 0 else min(tokens, length)
        if keep < 0:
            raise ValueError(f"cannot crop {-tokens} tokens from a cache holding {length}")
        self.decode_graphs.clear()  # a captured step assumes the previous step's selection (prefetch lag 1)
        for layer in self.layers:
            layer.crop(keep)
            if layer.is_initialized and self.row_start is not None:
                layer.rebuild_index(self.row_start.to(layer.device))
        self._plans.clear()

    def _select_rows(self, rows: torch.Tensor) -> None:
        if self.row_start is not None:
            self.graph_fallback_reason = "the cache's rows are reordered or selected between steps (beam search)"
            self.decode_graphs.clear()
            self.row_start = self.row_start.index_select(0, rows.to(self.row_start.device))
            self._row_start_host = [self._row_start_host[row] for row in rows.tolist()]
        for layer in self.layers:
            layer.select_rows(rows)
        self._plans.clear()

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        self._select_rows(beam_idx)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._select_rows(indices)

    def batch_repeat_interleave(self, repeats: int) -> None:
        if self.row_start is not None:
            self._select_rows(
                torch.arange(len(self.row_start), device=self.row_start.device).repeat_interleave(repeats)
            )
