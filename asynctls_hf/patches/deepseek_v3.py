"""DeepSeek-V3 (deepseek_v3): the same multi-head latent attention as GLM-4.7-Flash, patched by the same code."""

from asynctls_hf.patches import ModelFamily
from asynctls_hf.patches.glm4_moe_lite import check_attention, forward, layer_geometry, prefill_attention_bytes

FAMILY = ModelFamily("deepseek_v3", layer_geometry, check_attention, forward, prefill_attention_bytes)
