"""The checkpoints the command-line and example tests run on, picked in this one place.

Each is the shipped probe model when it is present, else a random stand-in of the same family with the probes'
word-level tokenizer. A random model answers wrongly, so the tests check what is printed and how it is computed,
never that an answer is right.
"""

from __future__ import annotations

import pytest
from helpers import tiny_glm4_moe_lite, tiny_qwen3

from asynctls_hf.probes import probe_path
from asynctls_hf.probes.tokenizer import build_word_tokenizer


def probe_or_stand_in(tmp_path_factory, probe: str, build_model) -> str:
    """The directory of shipped probe `probe`, or of `build_model(**tokenizer settings)` saved with the tokenizer."""
    try:
        return str(probe_path(probe))
    except FileNotFoundError:
        tokenizer = build_word_tokenizer()
        path = tmp_path_factory.mktemp(probe)
        model = build_model(
            vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id
        )
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        return str(path)


@pytest.fixture(scope="session")
def probe_checkpoint(tmp_path_factory) -> str:
    """The Qwen3 probe (a random 2-layer Qwen3 until it ships)."""
    return probe_or_stand_in(tmp_path_factory, "qwen3", tiny_qwen3)


@pytest.fixture(scope="session")
def glm_probe_checkpoint(tmp_path_factory) -> str:
    """The GLM-4.7-Flash-architecture probe (a random 3-layer glm4_moe_lite until it ships)."""
    return probe_or_stand_in(tmp_path_factory, "glm4_moe_lite", tiny_glm4_moe_lite)
