"""Triton kernel of naive.copy_rows: copy rows between two row-major tensors, which may live in pinned host memory.

A CUDA kernel can read and write pinned host memory through its mapped address (unified addressing), so one launch
moves a step's missing blocks straight from the pinned store into the device slots, or a new token's keys into the
store, with no host synchronization and no staging copy: which rows to copy stays on the device.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from asynctls_hf.ops.triton_common import require

CHUNK = 1024  # elements per work item at most (a narrower row: its width rounded up to a power of two)


@triton.jit
def _copy_rows_kernel(source_ptr, target_ptr, source_rows_ptr, target_rows_ptr, valid_ptr, items,
                      WIDTH: tl.constexpr, CHUNK: tl.constexpr, CHUNKS_PER_ROW: tl.constexpr):
    # Work item i copies chunk i % CHUNKS_PER_ROW of row i // CHUNKS_PER_ROW; program p takes items p, p + P, ...
    for item in range(tl.program_id(0), items, tl.num_programs(0)):
        row = item // CHUNKS_PER_ROW
        offsets = (item % CHUNKS_PER_ROW) * CHUNK + tl.arange(0, CHUNK)
        copied_width = tl.load(valid_ptr + row).to(tl.int32) * WIDTH  # 0 for a row not copied
        mask = offsets < copied_width
        source_row = tl.load(source_rows_ptr + row).to(tl.int64)
        target_row = tl.load(target_rows_ptr + row).to(tl.int64)
        values = tl.load(source_ptr + source_row * WIDTH + offsets, mask=mask)
        tl.store(target_ptr + target_row * WIDTH + offsets, values, mask=mask)


def copy_rows(
    source: torch.Tensor,
    target: torch.Tensor,
    source_rows: torch.Tensor,
    target_rows: torch.Tensor,
    valid: torch.Tensor,
    programs: int | None = None,
) -> None:
    """target[target_rows[n]] = source[source_rows[n]] where valid[n]; shapes in naive.copy_rows.

    `programs` caps the launch's grid: None launches one program per piece of a row (N * ceil(W / CHUNK) pieces
    of at most CHUNK elements); a number P launches at most P programs that loop over the pieces, leaving the
    rest of the GPU to kernels running beside the copy."""
    require(source.dim() == 2 and target.dim() == 2, "source and target must be 2D [rows, width]")
    require(source.shape[1] == target.shape[1], f"row widths differ: {source.shape[1]} and {target.shape[1]}")
    require(source.dtype == target.dtype, f"dtypes differ: {source.dtype} and {target.dtype}")
    require(source.is_contiguous() and target.is_contiguous(), "source and target must be contiguous")
    require(source_rows.shape == target_rows.shape == valid.shape and source_rows.dim() == 1,
            "source_rows, target_rows and valid must be [N]")
    require(valid.dtype == torch.bool and valid.is_contiguous() and source_rows.is_contiguous()
            and target_rows.is_contiguous(), "valid must be bool; valid and the row indices contiguous")
    require(programs is None or programs > 0, f"programs must be None or positive, got {programs}")
    chunk = min(CHUNK, triton.next_power_of_2(source.shape[1]))
    chunks_per_row = triton.cdiv(source.shape[1], chunk)
    items = source_rows.shape[0] * chunks_per_row
    if items == 0:
        return
    grid = (items if programs is None else min(items, programs),)
    _copy_rows_kernel[grid](
        source, target, source_rows, target_rows, valid, items, WIDTH=source.shape[1], CHUNK=chunk,
        CHUNKS_PER_ROW=chunks_per_row,
    )
