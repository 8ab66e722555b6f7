"""The shipped probe checkpoints load offline and solve a short needle prompt."""

from __future__ import annotations

import pytest

from asynctls_hf import AsyncTLSConfig
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import greedy_generate
from asynctls_hf.probes import PROBE_DIR, PROBES, load_probe, probe_path

SHIPPED = [name for name in PROBES if (PROBE_DIR / name / "config.json").is_file()]


def test_the_qwen3_probe_ships():
    assert "qwen3" in SHIPPED


def test_unknown_probe_is_a_clear_error():
    with pytest.raises(ValueError, match="shipped probes are"):
        probe_path("llama")


@pytest.mark.parametrize("name", SHIPPED)
@pytest.mark.parametrize("task", ["niah_single_1", "niah_single_2"])
def test_probe_answers_a_needle_prompt_offline(name, task, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = load_probe(name)
    sample = ruler.TASKS[task].make_samples(tokenizer, 2048, 1, seed=11)[0]
    answer, _ = greedy_generate(model, tokenizer, sample["input"], max_new_tokens=16)
    assert ruler.TASKS[task].score_sample(answer, sample) == 1.0, answer
    # Sparse decoding (budget 256 of a ~1.9k-token context) finds the same needle.
    config = AsyncTLSConfig(token_budget=256, top_blocks=8, block_size=32, sink_tokens=8, local_tokens=32)
    sparse_answer, stats = greedy_generate(model, tokenizer, sample["input"], max_new_tokens=16, config=config)
    assert ruler.TASKS[task].score_sample(sparse_answer, sample) == 1.0, sparse_answer
    assert stats["sparse_layer_steps"] > 0
