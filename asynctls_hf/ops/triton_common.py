"""What the Triton launchers share: input checks, the interpreter switch, and the device's SM count.

No transformers import. Importing this module does not import triton.
"""

from __future__ import annotations

import functools
import os

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
INDEX_DTYPES = (torch.int32, torch.int64)


class TritonUnsupportedError(ValueError):
    """An input the Triton kernels cannot handle (shape, dtype or layout); raised before anything is launched."""


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def require(condition: bool, message: str) -> None:
    """Raise TritonUnsupportedError(message) unless `condition`."""
    if not condition:
        raise TritonUnsupportedError(message)


def check_float(name: str, tensor: torch.Tensor, dims: int) -> None:
    """`tensor` has `dims` dimensions, a float dtype the kernels support, and a contiguous last dimension."""
    require(tensor.dim() == dims, f"{name} must have {dims} dimensions, got shape {tuple(tensor.shape)}")
    require(tensor.dtype in FLOAT_DTYPES, f"{name} must be float16, bfloat16 or float32, got {tensor.dtype}")
    require(tensor.stride(-1) == 1 or tensor.shape[-1] == 1, f"{name} needs a contiguous last dimension")


def check_index(name: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    """`tensor` is an int32/int64 index tensor of the given shape."""
    require(tuple(tensor.shape) == tuple(shape), f"{name} must have shape {tuple(shape)}, got {tuple(tensor.shape)}")
    require(tensor.dtype in INDEX_DTYPES, f"{name} must be int32 or int64, got {tensor.dtype}")


def check_same_device(**tensors: torch.Tensor) -> None:
    devices = {name: tensor.device for name, tensor in tensors.items()}
    require(len(set(devices.values())) == 1, f"tensors must share one device, got {devices}")


def dot_operands_in_fp32(dtype: torch.dtype) -> bool:
    """Whether kernels must upcast tl.dot operands: the interpreter multiplies bfloat16 as raw uint16 bits."""
    return interpreting() and dtype == torch.bfloat16


def dot_precision(dtype: torch.dtype) -> str:
    """tl.dot input precision: full float32 for float32 operands (not TF32); half types multiply exactly anyway."""
    return "ieee" if dtype == torch.float32 or dot_operands_in_fp32(dtype) else "tf32"


@functools.cache
def multiprocessor_count(device: torch.device) -> int:
    """Streaming multiprocessors of a CUDA device; a small count under the interpreter, so tests split work."""
    if device.type != "cuda":
        return 4
    return torch.cuda.get_device_properties(device).multi_processor_count
