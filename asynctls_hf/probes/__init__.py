"""Probe models: small Qwen3 and GLM-4.7-Flash-architecture (MLA) models trained here on synthetic long-context
retrieval, shipped inside the package so tests, the demo and the eval run offline.

    from asynctls_hf.probes import load_probe
    model, tokenizer = load_probe("qwen3")   # or "glm4_moe_lite"

Retrain with `python -m asynctls_hf.probes.train --arch qwen3 --out DIR` (see that module).
"""

from __future__ import annotations

from pathlib import Path

PROBES = ("qwen3", "glm4_moe_lite")
PROBE_DIR = Path(__file__).parent / "checkpoints"


def probe_path(name: str = "qwen3") -> Path:
    """The shipped checkpoint directory of probe `name` (one of PROBES), loadable with `from_pretrained`."""
    if name not in PROBES:
        raise ValueError(f"unknown probe model {name!r}; the shipped probes are: {', '.join(PROBES)}")
    path = PROBE_DIR / name
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"the {name} probe checkpoint is missing at {path}; reinstall asynctls-hf or retrain it with "
            f"`python -m asynctls_hf.probes.train --arch {name} --out {path}`"
        )
    return path


def load_probe(name: str = "qwen3", device: str = "cpu", dtype=None):
    """(model, tokenizer) of probe `name`, in eval mode on `device` (float32 unless `dtype` is given)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = probe_path(name)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or torch.float32).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)
