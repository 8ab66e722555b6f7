"""Decode-path ops. No transformers import here.

`naive` holds the PyTorch reference of each op; these names are what the rest of the package calls.
"""

from asynctls_hf.ops.naive import (
    block_scores,
    causal_prefill_attention,
    dense_decode_attention,
    dequantize_labels,
    label_scores,
    quantize_labels,
    sparse_attention,
    update_block_summaries,
)

__all__ = [
    "block_scores",
    "causal_prefill_attention",
    "dense_decode_attention",
    "dequantize_labels",
    "label_scores",
    "quantize_labels",
    "sparse_attention",
    "update_block_summaries",
]
