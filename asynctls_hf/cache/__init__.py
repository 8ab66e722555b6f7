"""The AsyncTLS KV cache: per-layer storage and index, per-step plans, statistics."""

from asynctls_hf.cache.cache import AsyncTLSCache, CacheMemoryError, DecodePlan, LayerGeometry
from asynctls_hf.cache.layer import AsyncTLSLayer

__all__ = ["AsyncTLSCache", "AsyncTLSLayer", "CacheMemoryError", "DecodePlan", "LayerGeometry"]
