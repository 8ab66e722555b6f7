"""CPU offload of the KV cache: a host block store, a device resident set, transports and the per-layer engine.

No transformers import here (the memory helper `available_memory` imports the cache package when called).
"""

from asynctls_hf.offload.engine import OffloadEngine
from asynctls_hf.offload.plan import (
    LayerFootprint,
    MemoryPlan,
    OffloadMemoryError,
    available_memory,
    label_bytes_per_token,
    plan_memory,
)
from asynctls_hf.offload.resident import CopyPlan, ResidentSet
from asynctls_hf.offload.store import HostBlockStore
from asynctls_hf.offload.transport import CudaStreamTransport, PendingCopy, SyncTransport, Transport

__all__ = [
    "CopyPlan",
    "CudaStreamTransport",
    "HostBlockStore",
    "LayerFootprint",
    "MemoryPlan",
    "OffloadEngine",
    "OffloadMemoryError",
    "PendingCopy",
    "ResidentSet",
    "SyncTransport",
    "Transport",
    "available_memory",
    "label_bytes_per_token",
    "plan_memory",
]
