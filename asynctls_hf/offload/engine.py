"""OffloadEngine: one layer's offloaded K/V (host store + device slots + transport) and the prefetch protocol."""

from __future__ import annotations

from collections import deque

import torch

from asynctls_hf import ops
from asynctls_hf.offload.resident import CopyPlan, ResidentSet
from asynctls_hf.offload.store import HostBlockStore
from asynctls_hf.offload.transport import PendingCopy, Transport, WaitTimer


class OffloadEngine:
    """The full K/V of one layer in a HostBlockStore; `num_slots` slots per (row, group) on the device, each holding
    a block (granularity "block") or a single token ("token"): U = `unit` tokens.

    Device buffers: key_buffer [B, NG, W + S * U, Dk] and value_buffer [B, NG, W + S * U, Dv] (a view of
    key_buffer's first Dv channels when the values are inside the keys). The first W = `window_tokens` positions
    of each (row, group) are the caller's (AsyncTLS keeps the sinks and the local window there); slot s holds
    positions W + s * U to W + (s + 1) * U, which block or token being ResidentSet's bookkeeping. Keeping both in
    one buffer lets one attention call read them.

    Per decode step the attention path calls, on the compute stream and in this order:
      1. append(keys, values): the step's token goes to the host store; device copies of the block it lands in
         are forgotten (their host data changed).
      2. (caller) block filtering with q_t gives `wanted` [B, NG, K] block ids (-1: none), K <= num_slots.
      3. blocks = begin_step(wanted): the blocks token selection may pick from at this step, [B, NG, K]
         (-1: none); when it returns they are resident and the compute stream waits for their data.
      4. (caller) token selection among the tokens of `blocks`, plus the sinks and the local window, which the
         caller keeps on the device itself (they are not in the slots).
      5. buffer_positions, resident = translate(positions): where the selected tokens sit in the device
         buffers; attention reads key_buffer / value_buffer there.
      6. end_step(), after the step's attention has been issued.

    prefetch_lag=0 (exact): begin_step fetches the misses of `wanted` before returning and returns `wanted`
    itself, so token selection and attention see exactly what a resident cache would. end_step does nothing.
    prefetch_lag=1: begin_step waits for the copies started at the previous step and returns the blocks wanted
    at the previous step that are still resident (a block appended to since is not); end_step plans this step's
    `wanted` and starts their copies, for use at the next step; the transport orders them after this step's
    reads. A step with no previous one (the first after prefill, reset or crop) is served as in exact mode.

    granularity="token": the slots hold single tokens (`num_slots` of them per row and group, thousands) and steps
    3 and 5 become one, after token selection among the tokens of all wanted blocks (their labels are on the
    device):
      3'. buffer_positions, resident = fetch_tokens(positions): the positions translated as in step 5.
          prefetch_lag=0 (exact): first the selected tokens that are not resident are copied into slots taken
          first in, first out (ResidentSet's circular policy, skipping the tokens selected now) and the compute
          stream waits for them, so every selected token is resident. prefetch_lag=1: the compute stream waits for
          the copies started at the previous step, attention reads the selected tokens that are resident (those
          selected at an earlier step and not evicted since), and end_step copies the missing ones for the next
          step, as the block protocol does, together with the `prefetch_successors` tokens that follow each
          selected one (below `successor_limit`): a model that copies a span reads its tokens one step apart.
    Only the tokens attention reads cross the bus, a fraction of their blocks' bytes.

    prefill: append each chunk as it is written (nothing is fetched). select_rows, crop and reset first make
    the compute stream wait for pending copies.
    """

    def __init__(
        self,
        store: HostBlockStore,
        num_slots: int,
        transport: Transport,
        device: torch.device | str,
        prefetch_lag: int = 0,
        window_tokens: int = 0,
        backend: str = "auto",
        granularity: str = "block",
        prefetch_successors: int = 0,
    ):
        if prefetch_lag not in (0, 1):
            raise ValueError(f"prefetch_lag must be 0 (exact) or 1, got {prefetch_lag!r}")
        if granularity not in ("block", "token"):
            raise ValueError(f"granularity must be 'block' or 'token', got {granularity!r}")
        if window_tokens % store.block_size:
            raise ValueError(f"window_tokens ({window_tokens}) must be a multiple of block_size ({store.block_size})")
        self.store = store
        self.transport = transport
        self.prefetch_lag = prefetch_lag
        self.granularity = granularity
        self.prefetch_successors = prefetch_successors
        self.unit = store.block_size if granularity == "block" else 1  # tokens per slot and per resident id
        self.device = torch.device(device)
        self.window_tokens = window_tokens
        self.resident = ResidentSet(
            store.batch, store.num_groups, num_slots, self._store_units, self.device,
            reserved_slots=window_tokens // self.unit, backend=backend, circular=granularity == "token",
        )
        self.key_buffer = torch.zeros(
            (store.batch, store.num_groups, window_tokens + num_slots * self.unit, store.key_width),
            dtype=store.dtype,
            device=self.device,
        )
        self.separate_value_buffer = (
            None if store.values_in_keys else torch.zeros_like(self.key_buffer[..., : store.value_width])
        )
        self._pending: PendingCopy | None = None
        # The blocks wanted at the previous step, [B, NG, K], updated in place (a captured step reads this tensor).
        self._previous_wanted: torch.Tensor | None = None
        self._has_previous = False
        self._to_prefetch: torch.Tensor | None = None
        self._successor_limit: torch.Tensor | None = None
        self.reset_stats()

    @property
    def value_buffer(self) -> torch.Tensor:
        """[B, NG, W + S * block_size, Dv]: its own buffer, or a view of key_buffer when the values are in the
        keys."""
        if self.separate_value_buffer is None:
            return self.key_buffer[..., : self.store.value_width]
        return self.separate_value_buffer

    @property
    def block_size(self) -> int:
        return self.store.block_size

    @property
    def _store_units(self) -> int:
        """The store's capacity in resident ids: blocks, or tokens with granularity "token"."""
        return self.store.capacity_blocks * self.store.block_size // self.unit

    @property
    def num_slots(self) -> int:
        return self.resident.num_slots

    # ---- the decode-step protocol --------------------------------------------------------------------

    def append(self, keys: torch.Tensor, values: torch.Tensor | None) -> None:
        """Write T tokens: keys [B, NG, T, Dk], values [B, NG, T, Dv] (None when inside the keys)."""
        begin, _ = self.store.append(keys, values)
        self.resident.ensure_block_capacity(self._store_units)
        self.resident.invalidate_from(begin // self.unit)

    def token_written(self, slot: torch.Tensor) -> None:
        """The caller's kernel wrote one decode token to the store at `slot` (0-dim int64 on the device, = the
        store's length; see store.token_written): count it and forget the device copy of its block, whose host data
        changed; no host int reaches a kernel (CUDA-graph capturable)."""
        self.store.token_written()
        if self.granularity == "block":  # a token slot never holds the new token's id: nothing else is stale
            self.resident.invalidate_from(slot // self.unit)

    def begin_step(self, wanted: torch.Tensor) -> torch.Tensor:
        """Step start, after block filtering: wanted [B, NG, K] int64 block ids (-1: none, ids unique per row and
        group). Returns the blocks token selection may pick from at this step, [B, NG, K] int64 (-1: none).
        Granularity "block" only (with "token" every wanted block is selectable: fetch_tokens)."""
        if self.granularity != "block":
            raise RuntimeError("begin_step is the block protocol's; an engine of granularity 'token' uses fetch_tokens")
        if self.prefetch_lag == 0 or not self._has_previous:
            self._copy_planned(self._plan(wanted))
            self._wait_pending()
            self._remember(wanted)
            return wanted
        self._wait_pending()
        selectable = self.resident.resident_only(self._previous_wanted)
        self._to_prefetch = wanted
        return selectable

    def translate(
        self, positions: torch.Tensor, valid: torch.Tensor | None = None, fixed: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token positions [B, NG, T] int64 -> (positions in key_buffer / value_buffer [B, NG, T] int64, resident
        [B, NG, T] bool); a position whose block is not resident (or not `valid`) maps to 0 with resident False;
        the first `fixed` entries are buffer positions already (ResidentSet.translate)."""
        return self.resident.translate(positions, self.unit, valid, fixed)

    def fetch_tokens(
        self, positions: torch.Tensor, valid: torch.Tensor, fixed: int = 0, successor_limit: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Granularity "token": translate the selected tokens into buffer positions, fetching those not resident.
        positions [B, NG, T] int64, the first `fixed` of them buffer positions already (the window), the rest store
        positions, unique per row and group where `valid` [B, NG, T] bool; T - fixed <= num_slots. Returns
        translate()'s (buffer positions, resident). Exact (prefetch_lag 0, and the first step of lag 1): the misses
        are copied, and the compute stream waits, before it returns: resident equals `valid`. Lag 1: resident marks
        the valid tokens already on the device; end_step copies the others for the next step. With lag 1 the
        `prefetch_successors` tokens after each selected one that lie below successor_limit [B] int64 (none
        without it) are copied with them, on the first step too."""
        if self.granularity != "token":
            raise RuntimeError("fetch_tokens is the token protocol's; an engine of granularity 'block' uses begin_step")
        selected = torch.where(valid[..., fixed:], positions[..., fixed:], -1)
        if self.prefetch_lag == 0 or not self._has_previous:
            self._copy_tokens(selected, successor_limit if self.prefetch_lag == 1 else None)
            self._has_previous = True
        else:
            self._to_prefetch, self._successor_limit = selected, successor_limit
        self._wait_pending()
        return self.translate(positions, valid, fixed)

    def end_step(self) -> None:
        """Step end, after the step's attention has been issued: with lag 1, start fetching this step's wanted
        blocks (selected tokens) for the next step."""
        if self._to_prefetch is not None:
            wanted, self._to_prefetch = self._to_prefetch, None
            if self.granularity == "block":
                self._copy_planned(self._plan(wanted))
                self._remember(wanted)
            else:
                self._copy_tokens(wanted, self._successor_limit)
                self._successor_limit = None
        capturing = self.device.type == "cuda" and torch.cuda.is_current_stream_capturing()
        while not capturing and self._wait_timers and self._wait_timers[0].done():
            self._wait_seconds += self._wait_timers.popleft().seconds()

    def _plan(self, wanted: torch.Tensor) -> CopyPlan:
        return self.resident.plan(wanted, self._store_units, row_tokens=self.unit)

    def _remember(self, wanted: torch.Tensor) -> None:
        """Keep `wanted` as the previous step's blocks, in place when the shape allows."""
        if self._previous_wanted is None or self._previous_wanted.shape != wanted.shape:
            self._previous_wanted = wanted.clone()
        else:
            self._previous_wanted.copy_(wanted)
        self._has_previous = True

    def finish_pending(self) -> None:
        """Make the current stream wait for every copy issued so far (none stays pending) and for the store's
        writes."""
        self._wait_pending()
        self.store.wait_for_writes()

    def forget_pending(self) -> None:
        """Drop the pending copy without waiting: its stream has been joined (the end of a captured step)."""
        self._pending = None

    def _copy_planned(self, plan: CopyPlan) -> None:
        """Copy the blocks of a plan made on the current stream (the block protocol: the next step's append
        forgets stale blocks on the current stream, so the plan must come before it there)."""
        self._pending = self.transport.copy_blocks(
            lambda: plan, (), self.store, self.key_buffer, self.separate_value_buffer, inline=self.prefetch_lag == 0
        )

    def _copy_tokens(self, selected: torch.Tensor, successor_limit: torch.Tensor | None = None) -> None:
        """Plan and copy the selected tokens [B, NG, T] int64 (-1: none), and with successor_limit [B] their
        successors (_with_successors), the plan made where the copies run (the copy stream): the current stream
        neither writes nor reads the token resident set until it waits for them (no token id at or past the length
        is ever resident, so the appended token makes none stale). With lag 1 in position order: which slot a token
        takes, so which token leaves when and which later picks are resident, does not depend on the order token
        selection lists them in (it differs between backends). Exact mode copies them as listed: every pick is
        resident before it is read, so where each one sits changes no result; the compute stream waits for them at
        once, so they run on it (inline)."""
        reads = (selected,) if successor_limit is None else (selected, successor_limit)
        self._pending = self.transport.copy_blocks(
            lambda: self._plan(self._with_successors(selected, successor_limit)), reads, self.store,
            self.key_buffer, self.separate_value_buffer, inline=self.prefetch_lag == 0,
        )

    def _with_successors(self, selected: torch.Tensor, successor_limit: torch.Tensor | None) -> torch.Tensor:
        """selected [B, NG, T] int64 token ids (-1: none, unique per row and group) -> the ids to plan: in exact
        mode `selected` itself; with lag 1 [B, NG, T * (1 + n)] sorted, each id once (repeats become -1): the
        selected ids and, with successor_limit [B], the n = prefetch_successors ids after each of them that lie below
        its row's limit (ops.sorted_with_successors, one launch on CUDA)."""
        if self.prefetch_lag == 0:
            return selected
        successors = 0 if successor_limit is None else self.prefetch_successors
        return ops.sorted_with_successors(selected, successor_limit, successors, backend=self.resident.backend)

    def _wait_pending(self) -> None:
        if self._pending is None:
            return
        timer = self.transport.wait(self._pending)
        if timer is not None:
            self._wait_timers.append(timer)
        self._pending = None

    def _join_pending(self) -> None:
        """Make the current stream wait for the pending copy without counting it as a step's stall."""
        if self._pending is not None:
            self.transport.wait(self._pending)
            self._pending = None

    # ---- batch and length changes --------------------------------------------------------------------

    def select_rows(self, rows: torch.Tensor) -> None:
        """Keep (reorder, repeat) the batch rows `rows` [B'] int64, pending copies finished first. Called between
        decode steps (beam-search reorder, batch selection)."""
        self._wait_pending()
        device_rows = rows.to(self.device)
        self.store.select_rows(rows)
        self.resident.select_rows(device_rows)
        self.key_buffer = self.key_buffer.index_select(0, device_rows)
        if self.separate_value_buffer is not None:
            self.separate_value_buffer = self.separate_value_buffer.index_select(0, device_rows)
        if self._previous_wanted is not None:
            self._previous_wanted = self._previous_wanted.index_select(0, device_rows)

    def crop(self, length: int) -> None:
        """Keep the first `length` tokens; the next step fetches as in exact mode."""
        self._wait_pending()
        self.store.crop(length)
        self.resident.invalidate_from(length // self.unit)
        self._has_previous, self._to_prefetch = False, None

    def reset(self) -> None:
        """Forget every token, every resident block and the statistics."""
        self._wait_pending()
        self.store.reset()
        self.resident.reset()
        self._has_previous, self._to_prefetch = False, None
        self.reset_stats()

    # ---- statistics ----------------------------------------------------------------------------------

    def reset_stats(self) -> None:
        """Zero the counters (the resident set's, which every plan adds to on the device), in place: a captured
        decode step adds to that very tensor; after the pending plan, which may add to them on the copy stream."""
        self._join_pending()
        self.resident.counters.zero_()
        self._wait_seconds = 0.0
        self._wait_timers: deque[WaitTimer] = deque()

    def stats(self) -> dict:
        """Counters since construction or reset_stats (reading them synchronizes the device).

        steps: plans made (one per decode step); wanted_blocks: (row, group, block) requests; hit_blocks: those
        already resident when planned; hit_rate: their share (1.0 before any request); copied_blocks and
        copied_bytes: host-to-device copies issued; wait_seconds: time the compute stream stalled on copies
        (CUDA transport with lag 1; 0 for the synchronous one and in exact mode, whose copies run on the compute
        stream and count in its step time). With granularity "token" the counts are of tokens.
        """
        self._join_pending()  # the pending plan may still be counting on the copy stream
        while self._wait_timers:
            self._wait_timers[0].end.synchronize()
            self._wait_seconds += self._wait_timers.popleft().seconds()
        steps, wanted, hits, copied = self.resident.counters.tolist()
        return {
            "steps": steps,
            "wanted_blocks": wanted,
            "hit_blocks": hits,
            "hit_rate": hits / wanted if wanted else 1.0,
            "copied_blocks": copied,
            "copied_bytes": copied * self.store.block_bytes // self.store.block_size * self.unit,
            "wait_seconds": self._wait_seconds,
        }
