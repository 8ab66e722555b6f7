"""Loading a checkpoint and decoding greedily, with stock attention or one method's AsyncTLS configuration."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from asynctls_hf.api import cache_argument, patched
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.config import AsyncTLSConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """"auto" is CUDA when available, else the CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


REPEATED_KV_SDPA = "sdpa_repeated_kv"


def sdpa_repeated_kv(module, query, key, value, attention_mask, **kwargs):
    """transformers' SDPA attention with each key/value head repeated for its group of query heads first.

    query [B, Hq, T, D]; key, value [B, Hkv, S, D] -> (output [B, T, Hq, Dv], None), as `sdpa_attention_forward`.
    On CUDA, SDPA's grouped-query path (`enable_gqa`, taken when no mask is passed) has no float32 kernel but the
    math one, which holds the attention weights [B, Hq, T, S]: for the Qwen3 probe a 32k prompt's prefill needs
    about 86 GiB. With the heads repeated, the memory-efficient kernel runs it in blocks; the result is the same
    attention."""
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    groups = query.shape[1] // key.shape[1]
    ungrouped = SimpleNamespace(num_key_value_groups=1, is_causal=getattr(module, "is_causal", True))
    return sdpa_attention_forward(ungrouped, query, repeat_kv(key, groups), repeat_kv(value, groups),
                                  attention_mask, **kwargs)


def register_repeated_kv_sdpa() -> str:
    """Registers `sdpa_repeated_kv` (with SDPA's masks) with transformers; returns its attn_implementation name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(REPEATED_KV_SDPA, sdpa_repeated_kv)
    AttentionMaskInterface.register(REPEATED_KV_SDPA, sdpa_mask)
    return REPEATED_KV_SDPA


def needs_repeated_kv(model) -> bool:
    """True for a float32 model on CUDA with stock SDPA and fewer key/value heads than query heads: the case in
    which SDPA would fall back to its math kernel (see `sdpa_repeated_kv`)."""
    config = model.config
    heads, kv_heads = config.num_attention_heads, getattr(config, "num_key_value_heads", None)
    return (model.device.type == "cuda" and model.dtype == torch.float32
            and config._attn_implementation == "sdpa" and kv_heads is not None and kv_heads < heads)


def load_model(path: str, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer) of a local Hugging Face checkpoint directory; nothing is downloaded.

    dtype "auto" keeps the checkpoint's dtype on CUDA and uses float32 on the CPU. A float32 grouped-query model on
    CUDA attends with `sdpa_repeated_kv` (stock SDPA would need the attention weights' memory at long prompts);
    the model's `config._attn_implementation` says which attention ran.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = resolve_device(device)
    if dtype == "auto":
        torch_dtype = "auto" if device.type == "cuda" else torch.float32
    elif dtype in DTYPES:
        torch_dtype = DTYPES[dtype]
    else:
        raise ValueError(f"unknown dtype {dtype!r}; expected auto or one of {', '.join(DTYPES)}")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype).to(device).eval()
    if needs_repeated_kv(model):
        model.set_attn_implementation(register_repeated_kv_sdpa())
    return model, tokenizer


def stop_token_ids(model, tokenizer, stop_at_newline: bool = False) -> list[int]:
    """The model's end-of-sequence ids (generation config, else tokenizer), plus the newline token if asked."""
    eos = model.generation_config.eos_token_id
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    if stop_at_newline:
        newline = tokenizer.encode("\n", add_special_tokens=False)
        ids += newline[-1:]
    return ids


@torch.no_grad()
def greedy_arguments(model, tokenizer, inputs, max_new_tokens: int, min_new_tokens: int | None = None,
                     stop_at_newline: bool = False) -> dict:
    """generate() keyword arguments for greedy decoding of tokenized `inputs` (input_ids, attention_mask),
    stopping at the model's stop tokens (and newlines when `stop_at_newline`) after `min_new_tokens`."""
    stop_ids = stop_token_ids(model, tokenizer, stop_at_newline)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (stop_ids or [0])[0]
    return dict(
        input_ids=inputs["input_ids"],
        attention_mask=inputs["attention_mask"],
        max_new_tokens=max_new_tokens,
        min_new_tokens=min_new_tokens,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        num_beams=1,
        eos_token_id=stop_ids or None,
        pad_token_id=pad_id,
    )


def greedy_generate(model, tokenizer, prompt: str, max_new_tokens: int, config: AsyncTLSConfig | None = None,
                    stop_at_newline: bool = False) -> tuple[str, dict | None]:
    """Greedy continuation of `prompt` decoded to text, and the AsyncTLS cache statistics (None for `full`).

    config None decodes with the model as it is (stock attention); otherwise the model is patched with `config`
    for the call and restored after.
    """
    inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
    arguments = greedy_arguments(
        model, tokenizer, inputs, max_new_tokens, 1 if stop_at_newline else None, stop_at_newline
    )
    if config is None:
        output, stats = model.generate(**arguments), None
    else:
        cache = AsyncTLSCache.for_model(model, config)
        with patched(model, config):
            output = model.generate(**arguments, **{cache_argument(model): cache})
        stats = cache.stats()
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    return tokenizer.decode(new_tokens, skip_special_tokens=True), stats
