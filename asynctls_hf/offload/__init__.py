"""CPU offload of the KV cache: a host block store, a device resident set, transports, the per-layer engine and
the placement planner.

No transformers import here.
"""

from asynctls_hf.offload.engine import OffloadEngine
from asynctls_hf.offload.plan import CacheMemoryError, Placement, free_device_memory, plan_placement
from asynctls_hf.offload.resident import CopyPlan, ResidentSet
from asynctls_hf.offload.store import HostBlockStore
from asynctls_hf.offload.transport import CudaStreamTransport, PendingCopy, SyncTransport, Transport

__all__ = [
    "CacheMemoryError",
    "CopyPlan",
    "CudaStreamTransport",
    "HostBlockStore",
    "OffloadEngine",
    "PendingCopy",
    "Placement",
    "ResidentSet",
    "SyncTransport",
    "Transport",
    "free_device_memory",
    "plan_placement",
]
