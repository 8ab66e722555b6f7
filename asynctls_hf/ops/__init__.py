"""Decode-path ops. No transformers import here.

`naive` holds the PyTorch reference of each op; `*_triton` modules hold the Triton kernels computing the same
functions. The names below are what the rest of the package calls; each decode op takes `backend`:
    "torch"   the reference;
    "triton"  the kernel, on CUDA tensors (or any device when TRITON_INTERPRET=1); an input the kernel cannot
              handle raises ValueError (TritonUnsupportedError), never a silent fallback;
    "auto"    the kernel on CUDA tensors when triton is installed, the reference elsewhere; an input the kernel
              cannot handle falls back to the reference with a warning.
Prefill attention and the dense decode baseline stay on PyTorch SDPA.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import warnings

import torch

from asynctls_hf.ops import naive
from asynctls_hf.ops.naive import dense_decode_attention, dequantize_labels
from asynctls_hf.ops.prefill_attention import causal_prefill_attention
from asynctls_hf.ops.triton_common import TritonUnsupportedError, interpreting

BACKENDS = ("auto", "torch", "triton")


@functools.cache
def triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def uses_triton(backend: str, device: torch.device) -> bool:
    """Whether an op on `device` runs its Triton kernel under `backend`; raises if "triton" cannot run there."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return False
    if backend == "auto":
        return device.type == "cuda" and triton_installed()
    if not triton_installed():
        raise RuntimeError("backend='triton' needs the triton package: pip install triton (or use backend='torch')")
    if device.type != "cuda" and not interpreting():
        raise RuntimeError(
            f"backend='triton' got tensors on {device}: the Triton kernels need CUDA tensors; move the model to a "
            "GPU, use backend='torch' or 'auto', or set the environment variable TRITON_INTERPRET=1 (before the "
            "first Triton op runs) to run the kernels in Triton's CPU interpreter"
        )
    return True


def _dispatch(backend: str, device: torch.device, module: str, name: str, *args):
    """Run op `name` of kernel module `module` or of `naive`, as `backend` and the device decide."""
    reference = getattr(naive, name)
    if not uses_triton(backend, device):
        return reference(*args)
    kernel = getattr(importlib.import_module(f"asynctls_hf.ops.{module}"), name)
    on_device = (
        torch.cuda.device(device)
        if device.type == "cuda" and device.index not in (None, torch.cuda.current_device())
        else contextlib.nullcontext()
    )
    try:
        with on_device:
            return kernel(*args)
    except TritonUnsupportedError as error:
        if backend == "triton":
            raise
        warnings.warn(f"{name}: the Triton kernel cannot take this input ({error}); using PyTorch", stacklevel=3)
        return reference(*args)


def update_block_summaries(
    keys: torch.Tensor,
    block_max: torch.Tensor,
    block_min: torch.Tensor,
    row_start: torch.Tensor,
    slot_begin: int,
    slot_end: int,
    block_size: int,
    *,
    backend: str = "auto",
) -> None:
    """Block min/max of slots [slot_begin, slot_end), in place; shapes in naive.update_block_summaries."""
    _dispatch(
        backend, keys.device, "block_summaries_triton", "update_block_summaries",
        keys, block_max, block_min, row_start, slot_begin, slot_end, block_size,
    )


def append_token(
    key: torch.Tensor,
    value: torch.Tensor | None,
    keys: torch.Tensor | None,
    values: torch.Tensor | None,
    block_max: torch.Tensor,
    block_min: torch.Tensor,
    slot: torch.Tensor,
    row_start: torch.Tensor,
    block_size: int,
    ring_keys: torch.Tensor | None = None,
    ring_values: torch.Tensor | None = None,
    ring_offset: int = 0,
    ring_size: int = 1,
    *,
    backend: str = "auto",
) -> None:
    """A decode token written at `slot` (a device tensor; also into a ring of recent tokens when given) and its
    block's summaries updated, in place; shapes in naive.append_token."""
    _dispatch(
        backend, key.device, "block_summaries_triton", "append_token",
        key, value, keys, values, block_max, block_min, slot, row_start, block_size, ring_keys, ring_values,
        ring_offset, ring_size,
    )


def block_scores(
    query: torch.Tensor,
    block_max: torch.Tensor,
    block_min: torch.Tensor,
    block_valid: torch.Tensor,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Quest bound of each block: [B, NG, NB] float32; shapes in naive.block_scores."""
    return _dispatch(
        backend, query.device, "block_scores_triton", "block_scores", query, block_max, block_min, block_valid
    )


def quantize_labels(
    channel_keys: torch.Tensor, bits: int, *, backend: str = "auto"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token asymmetric label quantization -> (codes, scale, zero); shapes in naive.quantize_labels."""
    return _dispatch(backend, channel_keys.device, "labels_triton", "quantize_labels", channel_keys, bits)


def append_token_labels(
    key: torch.Tensor,
    label_channels: torch.Tensor,
    label_codes: torch.Tensor,
    label_scale: torch.Tensor,
    label_zero: torch.Tensor,
    slot: torch.Tensor,
    bits: int,
    *,
    backend: str = "auto",
) -> None:
    """A decode token's label written at `slot` (a device tensor), in place; shapes in naive.append_token_labels."""
    _dispatch(
        backend, key.device, "labels_triton", "append_token_labels",
        key, label_channels, label_codes, label_scale, label_zero, slot, bits,
    )


def candidate_scores(
    query: torch.Tensor,
    label_channels: torch.Tensor,
    label_codes: torch.Tensor,
    label_scale: torch.Tensor,
    label_zero: torch.Tensor,
    kept_blocks: torch.Tensor,
    kept_block_scores: torch.Tensor,
    candidate_low: torch.Tensor,
    candidate_high: torch.Tensor,
    block_size: int,
    bits: int,
    head_scaling: float | None = None,
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidates of the kept blocks and their masked label scores (by the summed query, or by head mass with
    head_scaling); shapes in naive.candidate_scores."""
    return _dispatch(
        backend, query.device, "labels_triton", "candidate_scores",
        query, label_channels, label_codes, label_scale, label_zero, kept_blocks, kept_block_scores, candidate_low,
        candidate_high, block_size, bits, head_scaling,
    )


def copy_rows(
    source: torch.Tensor,
    target: torch.Tensor,
    source_rows: torch.Tensor,
    target_rows: torch.Tensor,
    valid: torch.Tensor,
    *,
    programs: int | None = None,
    second_target: torch.Tensor | None = None,
    entries: int = 1,
    backend: str = "auto",
) -> None:
    """target[target_rows[n]] = source[source_rows[n]] where valid[n], in place; with second_target each source row's
    `entries` entries are split between target and second_target (a token's key and value, side by side in the
    host store); shapes in naive.copy_rows. The kernel runs on the index tensors' device and reads or writes pinned
    host memory directly; `programs` caps its grid (copy_rows_triton.copy_rows)."""
    _dispatch(
        backend, source_rows.device, "copy_rows_triton", "copy_rows", source, target, source_rows, target_rows, valid,
        programs, second_target, entries,
    )


def plan_resident_blocks(
    wanted: torch.Tensor,
    slot_block: torch.Tensor,
    slot_last_wanted: torch.Tensor,
    block_slot: torch.Tensor,
    step: torch.Tensor,
    counters: torch.Tensor,
    source_blocks_per_row: int,
    target_slots_per_row: int,
    reserved_slots: int,
    *,
    cursor: torch.Tensor | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """An offloaded layer's resident-set plan for the blocks `wanted`, the state and counters updated in place ->
    (hits, copy_mask, dest_slots, source_rows, target_rows); shapes and the eviction order (least recently wanted,
    or circular from `cursor`) in naive.plan_resident_blocks."""
    return _dispatch(
        backend, wanted.device, "resident_triton", "plan_resident_blocks",
        wanted, slot_block, slot_last_wanted, block_slot, step, counters, source_blocks_per_row,
        target_slots_per_row, reserved_slots, cursor,
    )


def sorted_with_successors(
    ids: torch.Tensor, limit: torch.Tensor | None, successors: int, *, backend: str = "auto"
) -> torch.Tensor:
    """ids [B, NG, T] int64 with the `successors` ids after each that lie below limit [B], sorted, each once
    (naive.sorted_with_successors); one launch on CUDA, where torch's cat, comparisons and radix sort are a dozen."""
    return _dispatch(backend, ids.device, "resident_triton", "sorted_with_successors", ids, limit, successors)


def forget_resident_blocks(
    slot_block: torch.Tensor,
    slot_last_wanted: torch.Tensor,
    block_slot: torch.Tensor,
    first_block: torch.Tensor,
    *,
    backend: str = "auto",
) -> None:
    """Forget a resident set's copies of every block id >= first_block (a device tensor), in place; shapes in
    naive.forget_resident_blocks."""
    _dispatch(
        backend, slot_block.device, "resident_triton", "forget_resident_blocks",
        slot_block, slot_last_wanted, block_slot, first_block,
    )


def translate_positions(
    positions: torch.Tensor,
    valid: torch.Tensor,
    block_slot: torch.Tensor,
    block_size: int,
    reserved_slots: int,
    fixed: int,
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token positions of an offloaded layer -> (positions in its device buffer, valid); the first `fixed` entries
    pass through; shapes in naive.translate_positions."""
    return _dispatch(
        backend, positions.device, "resident_triton", "translate_positions",
        positions, valid, block_slot, block_size, reserved_slots, fixed,
    )


def select_top_k(scores: torch.Tensor, k: int, *, backend: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest entries of each row in no particular order -> (values, indices); shapes in naive.select_top_k."""
    _check_top_k(scores, k)
    return _dispatch(backend, scores.device, "topk_triton", "select_top_k", scores, k)


def select_tokens_into(
    token_scores: torch.Tensor,
    candidates: torch.Tensor,
    k: int,
    fixed_slots: torch.Tensor,
    fixed_valid: torch.Tensor,
    *,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed slots then the k best candidates of each group -> (slots, valid); shapes in naive.select_tokens_into."""
    _check_top_k(token_scores, k)
    return _dispatch(
        backend, token_scores.device, "topk_triton", "select_tokens_into",
        token_scores, candidates, k, fixed_slots, fixed_valid,
    )


def _check_top_k(scores: torch.Tensor, k: int) -> None:
    if not 0 < k <= scores.shape[-1]:
        raise ValueError(f"k must be in 1..{scores.shape[-1]} (the last dimension of the scores), got {k}")


def sparse_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    slots: torch.Tensor,
    valid: torch.Tensor,
    scaling: float,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Attention of each group's heads over its selected slots: [B, NG, G, Dv]; shapes in naive.sparse_attention."""
    return _dispatch(
        backend, query.device, "sparse_attention_triton", "sparse_attention",
        query, keys, values, slots, valid, scaling,
    )


__all__ = [
    "BACKENDS",
    "TritonUnsupportedError",
    "append_token",
    "block_scores",
    "candidate_scores",
    "causal_prefill_attention",
    "dense_decode_attention",
    "dequantize_labels",
    "quantize_labels",
    "select_tokens_into",
    "select_top_k",
    "sparse_attention",
    "triton_installed",
    "update_block_summaries",
    "uses_triton",
]
