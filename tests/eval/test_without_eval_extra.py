"""The RULER harness and the locality command on a machine without the eval extra (datasets, rouge-score,
rapidfuzz, matplotlib): they run in a subprocess where importing those packages fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from asynctls_hf.eval import runner

EVAL_EXTRA_MODULES = ("datasets", "rouge_score", "rapidfuzz", "matplotlib")
REPOSITORY = Path(__file__).resolve().parents[2]


def run_without_eval_extra(module: str, argv: list[str]) -> subprocess.CompletedProcess:
    """`module.main(argv)` in a fresh Python where importing any of EVAL_EXTRA_MODULES raises ImportError."""
    code = "\n".join([
        "import sys",
        f"for name in {EVAL_EXTRA_MODULES!r}:",
        "    sys.modules[name] = None",
        f"from {module} import main",
        f"sys.exit(main({argv!r}))",
    ])  # fmt: skip
    return subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, timeout=600)


def test_ruler_eval_writes_results_without_the_extra_and_plots_on_a_rerun_with_it(tiny_checkpoint, tmp_path,
                                                                                   monkeypatch):
    argv = ["--model", tiny_checkpoint, "--out", str(tmp_path), "--tasks", "niah_single_1,vt", "--methods",
            "full,asynctls", "--budgets", "64", "--context-lengths", "512", "--samples", "1", "--max-new-tokens",
            "2", "--block-size", "16", "--sink-tokens", "4", "--local-tokens", "16", "--device", "cpu",
            "--no-progress"]  # fmt: skip
    completed = run_without_eval_extra("asynctls_hf.eval.runner", argv)
    assert completed.returncode == 0, completed.stderr
    message = "matplotlib not installed: skipped accuracy_vs_budget.png; rerun with the eval extra to draw it"
    assert message in completed.stderr

    run_dir = tmp_path / "tiny-qwen3"
    results = sorted(path.relative_to(run_dir).as_posix() for path in run_dir.glob("*/*.json"))
    assert results == [
        "niah_single_1/asynctls_budget-64_len-512.json", "niah_single_1/full_budget-all_len-512.json",
        "vt/asynctls_budget-64_len-512.json", "vt/full_budget-all_len-512.json",
    ]  # fmt: skip
    assert "| asynctls @ 64 |" in (run_dir / "results.md").read_text()
    assert not (run_dir / "accuracy_vs_budget.png").exists()

    # Where matplotlib is installed, the same command computes nothing again and draws the plot.
    pytest.importorskip("matplotlib")

    def must_not_generate(*args, **kwargs):
        raise AssertionError("a present result was run again")

    monkeypatch.setattr(runner, "greedy_generate", must_not_generate)
    assert runner.main(argv) == 0
    assert (run_dir / "accuracy_vs_budget.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_locality_command_runs_without_the_extra(tiny_checkpoint, tmp_path):
    argv = ["--model", tiny_checkpoint, "--context-lengths", "512", "--samples", "1", "--steps", "3", "--budget",
            "128", "--block-size", "16", "--sink-tokens", "4", "--local-tokens", "16", "--out", str(tmp_path),
            "--device", "cpu"]  # fmt: skip
    completed = run_without_eval_extra("asynctls_hf.eval.locality", argv)
    assert completed.returncode == 0, completed.stderr
    written = json.loads((tmp_path / "tiny-qwen3" / "locality_niah_single_2_budget-128.json").read_text())
    assert written["results"][0]["steps"] == 1
