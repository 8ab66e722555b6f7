"""AsyncTLS for Hugging Face Transformers: two-level sparse attention for long-context decoding.

    model = asynctls_hf.patch(model)
    model.generate(long_prompt_ids, max_new_tokens=64)
"""

from asynctls_hf.api import patch, patched, unpatch
from asynctls_hf.cache import AsyncTLSCache, CacheMemoryError
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.graphs import GraphFallbackWarning
from asynctls_hf.patches import UnsupportedModelError, supported_model_types

__version__ = "0.1.0"

__all__ = [
    "AsyncTLSCache",
    "AsyncTLSConfig",
    "CacheMemoryError",
    "GraphFallbackWarning",
    "UnsupportedModelError",
    "patch",
    "patched",
    "supported_model_types",
    "unpatch",
]
