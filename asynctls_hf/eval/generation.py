"""Loading a checkpoint and decoding greedily, with stock attention or one method's AsyncTLS configuration."""

from __future__ import annotations

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


def load_model(path: str, device: str = "auto", dtype: str = "auto"):
    """(model, tokenizer) of a local Hugging Face checkpoint directory; nothing is downloaded.

    dtype "auto" keeps the checkpoint's dtype on CUDA and uses float32 on the CPU.
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
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch_dtype)
    return model.to(device).eval(), tokenizer


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
