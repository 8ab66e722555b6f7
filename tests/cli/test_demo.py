"""`asynctls-hf demo` on the Qwen3 probe (or its random stand-in): what it prints and how it is computed."""

from __future__ import annotations

import dataclasses

from asynctls_hf import AsyncTLSConfig, cli, demo
from asynctls_hf.eval.generation import load_model

SMALL = ["--context", "512", "--budget", "128", "--max-new-tokens", "4"]


def test_demo_prints_both_answers_judged_by_the_ruler_scorer(probe_checkpoint, capsys, monkeypatch):
    scored = []

    def score_sample(prediction, sample):  # full attention is "right", AsyncTLS "wrong", whatever they answer
        scored.append((prediction, sample["outputs"]))
        return 1.0 if len(scored) == 1 else 0.0

    monkeypatch.setattr(demo, "TASK", dataclasses.replace(demo.TASK, score_sample=score_sample))
    assert cli.main(["demo", "--model", probe_checkpoint, *SMALL]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"model: {probe_checkpoint} (qwen3, ")
    assert len(scored) == 2 and scored[0][1] == scored[1][1]
    assert lines[1].startswith("needle-in-a-haystack prompt: ")
    assert lines[1].endswith(f" tokens; the answer is {scored[0][1][0]}")
    full, sparse = (next(line for line in lines if line.startswith(method)) for method in ("full", "AsyncTLS "))
    assert full.split()[2:4] == ["right", "decode"] and "tokens/s" in full
    assert sparse.split()[1:3] == ["wrong", "decode"]
    assert full.endswith(f"answer: {scored[0][0].strip()!r}") and sparse.endswith(f"answer: {scored[1][0].strip()!r}")
    assert "AsyncTLS attended 128 tokens per KV head and decode step (token budget 128)" in lines[-1]
    assert lines[-1].endswith(" MiB")


def test_run_demo_decodes_sparsely_past_the_budget(probe_checkpoint):
    model, tokenizer = load_model(probe_checkpoint, device="cpu")
    result = demo.run_demo(model, tokenizer, 512, AsyncTLSConfig(token_budget=128), max_new_tokens=3)

    sample = demo.TASK.make_samples(tokenizer, 512, 1, 0)[0]
    assert result["references"] == sample["outputs"]
    assert result["prompt_tokens"] == len(tokenizer(sample["input"])["input_ids"]) > 128
    full, sparse = result["runs"]
    assert (full["method"], full["stats"]) == ("full attention", None)
    for run in result["runs"]:
        assert run["score"] == demo.TASK.score_sample(run["prediction"], sample)
        assert run["right"] == (run["score"] == 1)
        assert run["tokens_per_second"] is None or run["tokens_per_second"] > 0
    assert sparse["stats"]["attended_tokens"] == 128
    assert sparse["stats"]["sparse_layer_steps"] > 0 and sparse["stats"]["dense_layer_steps"] == 0
