"""The harness end to end on a tiny random Qwen3 with a word-level tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer

from asynctls_hf import cli
from asynctls_hf.eval import runner
from asynctls_hf.eval.generation import load_model

COMMON = [
    "--context-lengths", "512", "--samples", "2", "--max-new-tokens", "3", "--block-size", "16",
    "--sink-tokens", "4", "--local-tokens", "16", "--no-progress",
]  # fmt: skip


def run(checkpoint, out, *options):
    return runner.main(["--model", checkpoint, "--out", str(out), *COMMON, *options])


def test_harness_end_to_end(tiny_checkpoint, tmp_path, monkeypatch):
    out = tmp_path / "results"
    options = ["--methods", "full,asynctls", "--budgets", "64,1024", "--tasks", "niah_single_1,vt,qa_1",
               "--ruler-qa-dir", str(tmp_path), "--fidelity-steps", "2"]
    assert run(tiny_checkpoint, out, *options) == 0

    run_dir = out / "tiny-qwen3"
    files = sorted(path.relative_to(run_dir).as_posix() for path in run_dir.rglob("*.json"))
    assert files == [
        "config.json",
        "niah_single_1/asynctls_budget-1024_len-512.json", "niah_single_1/asynctls_budget-64_len-512.json",
        "niah_single_1/full_budget-all_len-512.json",
        "vt/asynctls_budget-1024_len-512.json", "vt/asynctls_budget-64_len-512.json", "vt/full_budget-all_len-512.json",
    ]  # fmt: skip
    config = json.loads((run_dir / "config.json").read_text())
    assert config["methods"] == ["full", "asynctls"] and config["base_config"]["block_size"] == 16

    full = json.loads((run_dir / "niah_single_1/full_budget-all_len-512.json").read_text())
    sparse = json.loads((run_dir / "niah_single_1/asynctls_budget-64_len-512.json").read_text())
    dense = json.loads((run_dir / "niah_single_1/asynctls_budget-1024_len-512.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint)
    for sample, record in runner.scored_samples(tokenizer, full):  # the prompts remade from the result alone
        assert (sample["index"], sample["outputs"]) == (record["index"], record["references"])
    assert (full["task"], full["model"], full["method"], full["budget"], full["length"]) == (
        "niah_single_1", "tiny-qwen3", "full", None, 512
    )
    assert full["config"] is None and full["attended_tokens"] is None and "attention_recall" not in full
    assert (full["device"], full["dtype"], full["torch"]) == ("cpu", "torch.float32", torch.__version__)
    assert sparse["config"]["token_budget"] == 64 and sparse["attended_tokens"] == 64
    assert len(sparse["attention_recall"]["per_layer"]) == 2
    assert 0 < sparse["attention_recall"]["mean"] < 1
    assert len(full["samples"]) == 2
    for record in full["samples"]:
        assert record["length"] <= 512 and 0 <= record["score"] <= 1 and record["references"]
    # Every method sees the same samples; a budget above the context decodes exactly like full attention.
    assert [r["references"] for r in sparse["samples"]] == [r["references"] for r in full["samples"]]
    assert [r["prediction"] for r in dense["samples"]] == [r["prediction"] for r in full["samples"]]

    table = (run_dir / "results.md").read_text()
    assert "## Scores (0-100), context 512 tokens" in table
    assert "| method | niah_single_1 | vt | mean |" in table
    assert "| full |" in table and "| asynctls @ 64 |" in table and "| asynctls @ 1024 |" in table
    assert "## Attention recall, context 512 tokens" in table
    assert "qa_1 at 512 tokens: RULER squad data not found" in table
    assert (run_dir / "accuracy_vs_budget.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # A second run finds every result present and generates nothing.
    before = {path: path.stat().st_mtime_ns for path in run_dir.rglob("*_len-*.json")}

    def must_not_generate(*args, **kwargs):
        raise AssertionError("a present result was run again")

    monkeypatch.setattr(runner, "greedy_generate", must_not_generate)
    (run_dir / "config.json").write_text('{"device": "where the results were made"}')
    assert run(tiny_checkpoint, out, *options) == 0
    assert {path: path.stat().st_mtime_ns for path in run_dir.rglob("*_len-*.json")} == before
    assert json.loads((run_dir / "config.json").read_text()) == {"device": "where the results were made"}
    assert "| asynctls @ 64 |" in (run_dir / "results.md").read_text()


def test_removed_result_is_run_again_and_others_are_kept(tiny_checkpoint, tmp_path):
    model, tokenizer = load_model(tiny_checkpoint, device="cpu")
    out = tmp_path / "results"
    kwargs = dict(methods=["streaming", "quest"], tasks=["vt"], context_lengths=[512], budgets=[48], samples=2,
                  out_dir=out, max_new_tokens=2, base_config=dict(block_size=16, sink_tokens=4, local_tokens=16),
                  progress=False)
    first = runner.run_eval(model, tokenizer, **kwargs)
    assert [result["method"] for result in first["results"]] == ["streaming", "quest"]
    assert first["results"][1]["config"]["top_blocks"] * 16 == 48 - 4 - first["results"][1]["config"]["local_tokens"]
    removed = runner.ResultKey("vt", "tiny-qwen3", "quest", 48, 512).path(out)
    kept = runner.ResultKey("vt", "tiny-qwen3", "streaming", 48, 512).path(out)
    kept_time = kept.stat().st_mtime_ns
    removed.unlink()
    second = runner.run_eval(model, tokenizer, **kwargs)
    assert removed.exists() and kept.stat().st_mtime_ns == kept_time
    assert second["results"][1]["samples"] == first["results"][1]["samples"]


def test_longbench_through_the_package_cli(tiny_checkpoint, tmp_path):
    rows = [
        {"input": "", "context": f"Paragraph 1: fish. Paragraph 2: cats. {' '.join(['dog'] * 300)}",
         "answers": ["2"], "length": 300, "all_classes": None}
        for _ in range(3)
    ]
    (tmp_path / "passage_count.jsonl").write_text("\n".join(json.dumps(row) for row in rows))
    out = tmp_path / "out"
    argv = ["eval", "--model", tiny_checkpoint, "--out", str(out), *COMMON, "--methods", "full,streaming",
            "--budgets", "48", "--tasks", "passage_count", "--longbench-dir", str(tmp_path)]
    assert cli.main(argv) == 0
    result = json.loads((out / "tiny-qwen3/passage_count/streaming_budget-48_len-512.json").read_text())
    assert result["benchmark"] == "longbench" and result["num_samples"] == 2
    assert all(record["length"] <= 512 for record in result["samples"])


def test_unknown_names_are_refused(tiny_checkpoint, tmp_path):
    with pytest.raises(SystemExit):
        runner.main(["--model", tiny_checkpoint, "--methods", "h2o"])
    with pytest.raises(SystemExit):
        runner.main(["--model", tiny_checkpoint, "--tasks", "niah_single_9"])
    assert runner.expand_tasks(["longbench", "vt"])[-1] == "vt"
    assert len(runner.expand_tasks(["ruler"])) == 13


def test_a_row_lacking_a_task_has_no_mean(tmp_path):
    """A run cut short leaves rows without some tasks: their mean over the others is left out of the table and the
    plot, where it would read as comparable with the complete rows'."""
    def result(method, task, score):
        return {"task": task, "method": method, "budget": None if method == "full" else 512, "length": 4096,
                "score": score}

    results = [result("full", "a", 100.0), result("full", "b", 50.0), result("quest", "a", 100.0)]
    runner.write_table(results, {}, tmp_path / "results.md")
    table = (tmp_path / "results.md").read_text()
    assert "| full | 100.0 | 50.0 | 75.0 |" in table and "| quest @ 512 | 100.0 | - | - |" in table

