"""Triton kernel of naive.copy_rows: copy rows between two row-major tensors, which may live in pinned host memory.

A CUDA kernel can read and write pinned host memory through its mapped address (unified addressing), so one launch
moves a step's missing blocks straight from the pinned store into the device slots, or a new token's keys into the
store, with no host synchronization and no staging copy: which rows to copy stays on the device.

A work item is a tile of ROWS listed rows by CHUNK columns, so that one program has the reads of several rows in
flight at once: a single token's row read from host memory is a bus round trip, and a step lists thousands of rows
of which most are not copied (already resident). With a second target each source row holds `entries` entries side
by side (a token's key then its value, in the host store), and each entry is split between the two targets (the
device's key and value buffers): a token is one contiguous read of its key and value, not two scattered ones.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import require

CHUNK = 1024  # columns per work item at most (a narrower row: its width rounded up to a power of two)
TILE = 2048  # elements per work item: ROWS = TILE // chunk rows of `chunk` columns


@triton.jit
def _copy_rows_kernel(source_ptr, target_ptr, second_target_ptr, source_rows_ptr, target_rows_ptr, valid_ptr,
                      n_rows, items, WIDTH: tl.constexpr, ENTRY: tl.constexpr, FIRST: tl.constexpr,
                      SECOND: tl.constexpr, CHUNK: tl.constexpr, CHUNKS_PER_ROW: tl.constexpr, ROWS: tl.constexpr,
                      SPLIT: tl.constexpr):
    # Work item i copies column chunk i % CHUNKS_PER_ROW of listed rows (i // CHUNKS_PER_ROW) * ROWS + 0..ROWS-1;
    # program p takes items p, p + P, ... A source row is WIDTH // ENTRY entries of ENTRY columns; without SPLIT
    # ENTRY = FIRST = WIDTH, with it each entry's first FIRST columns go to target, the other SECOND to second_target.
    for item in range(tl.program_id(0), items, tl.num_programs(0)):
        rows = (item // CHUNKS_PER_ROW) * ROWS + tl.arange(0, ROWS)
        columns = (item % CHUNKS_PER_ROW) * CHUNK + tl.arange(0, CHUNK)
        copied = tl.load(valid_ptr + rows, mask=rows < n_rows, other=0) != 0
        source_row = tl.load(source_rows_ptr + rows, mask=copied, other=0).to(tl.int64)
        target_row = tl.load(target_rows_ptr + rows, mask=copied, other=0).to(tl.int64)
        mask = copied[:, None] & (columns < WIDTH)[None, :]
        values = tl.load(source_ptr + source_row[:, None] * WIDTH + columns[None, :], mask=mask)
        entry = columns // ENTRY
        channel = columns - entry * ENTRY
        first = (channel < FIRST)[None, :]
        first_offsets = target_row[:, None] * (WIDTH // ENTRY * FIRST) + (entry * FIRST + channel)[None, :]
        tl.store(target_ptr + first_offsets, values, mask=mask & first)
        if SPLIT:
            second_offsets = (target_row[:, None] * (WIDTH // ENTRY * SECOND)
                              + (entry * SECOND + channel - FIRST)[None, :])
            tl.store(second_target_ptr + second_offsets, values, mask=mask & ~first)


def copy_rows(
    source: torch.Tensor,
    target: torch.Tensor,
    source_rows: torch.Tensor,
    target_rows: torch.Tensor,
    valid: torch.Tensor,
    programs: int | None = None,
    second_target: torch.Tensor | None = None,
    entries: int = 1,
) -> None:
    """target[target_rows[n]] = source[source_rows[n]] where valid[n], each source entry split between target and
    second_target when given; shapes in naive.copy_rows.

    `programs` caps the launch's grid: None launches one program per work item (a tile of up to TILE elements: rows
    of the list by a piece of at most CHUNK columns); a number P launches at most P programs that loop over the
    items, leaving the rest of the GPU to kernels running beside the copy."""
    targets = [target] if second_target is None else [target, second_target]
    require(source.dim() == 2 and all(tensor.dim() == 2 for tensor in targets), "sources and targets must be 2D")
    require(all(tensor.dtype == source.dtype for tensor in targets),
            f"dtypes differ: {source.dtype} and {[tensor.dtype for tensor in targets]}")
    require(source.is_contiguous() and all(tensor.is_contiguous() for tensor in targets),
            "sources and targets must be contiguous")
    require(entries > 0 and all(tensor.shape[1] % entries == 0 for tensor in (source, *targets)),
            f"every row width must be a multiple of entries={entries}")
    require(sum(tensor.shape[1] for tensor in targets) == source.shape[1],
            f"target widths {[tensor.shape[1] for tensor in targets]} do not add up to the source's {source.shape[1]}")
    require(second_target is not None or entries == 1, "entries only matter with a second target")
    require(source_rows.shape == target_rows.shape == valid.shape and source_rows.dim() == 1,
            "source_rows, target_rows and valid must be [N]")
    require(valid.dtype == torch.bool and valid.is_contiguous() and source_rows.is_contiguous()
            and target_rows.is_contiguous(), "valid must be bool; valid and the row indices contiguous")
    require(programs is None or programs > 0, f"programs must be None or positive, got {programs}")
    width = source.shape[1]
    chunk = min(CHUNK, triton.next_power_of_2(width))
    chunks_per_row = triton.cdiv(width, chunk)
    rows_per_item = TILE // chunk
    items = triton.cdiv(source_rows.shape[0], rows_per_item) * chunks_per_row
    if items == 0:
        return
    grid = (items if programs is None else min(items, programs),)
    _copy_rows_kernel[grid](
        source, target, target if second_target is None else second_target, source_rows, target_rows, valid,
        source_rows.shape[0], items, WIDTH=width, ENTRY=width // entries, FIRST=target.shape[1] // entries,
        SECOND=0 if second_target is None else second_target.shape[1] // entries,
        CHUNK=chunk, CHUNKS_PER_ROW=chunks_per_row, ROWS=rows_per_item, SPLIT=second_target is not None,
    )
