"""Each example runs as a script, small, on the probe checkpoints (or their random stand-ins)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

from asynctls_hf import probes

EXAMPLES = Path(__file__).parents[2] / "examples"
SMALL = ["--context", "512", "--budget", "128"]


def run_example(name: str, argv: list[str], monkeypatch, capsys) -> str:
    monkeypatch.setattr(sys, "argv", [name, *argv])
    runpy.run_path(str(EXAMPLES / name), run_name="__main__")
    return capsys.readouterr().out


def test_quickstart(probe_checkpoint, monkeypatch, capsys):
    out = run_example("quickstart.py", ["--model", probe_checkpoint, *SMALL, "--new-tokens", "4"], monkeypatch, capsys)
    lines = out.splitlines()
    assert lines[0].startswith("prompt ") and ", budget 128; the answer is " in lines[0]
    assert lines[1].startswith("full attention ") and "tokens/s  answer: " in lines[1]
    assert lines[2].startswith("AsyncTLS ") and "tokens/s  answer: " in lines[2]
    assert lines[3].startswith("AsyncTLS attended 128 tokens per head and step; its cache holds ")


def test_glm_mla(glm_probe_checkpoint, monkeypatch, capsys):
    out = run_example("glm_mla.py", ["--model", glm_probe_checkpoint, *SMALL, "--new-tokens", "4"], monkeypatch, capsys)
    lines = out.splitlines()
    assert ", budget 128; the answer is " in lines[0]
    assert lines[1].startswith("AsyncTLS answer (right): ") or lines[1].startswith("AsyncTLS answer (wrong): ")
    assert lines[2].startswith("attended 128 tokens per step; ") and " sparse and 0 dense layer steps; " in lines[2]


def test_ruler_eval(probe_checkpoint, tmp_path, monkeypatch, capsys):
    argv = ["--model", probe_checkpoint, *SMALL, "--samples", "1", "--tasks", "vt", "--out", str(tmp_path)]
    out = run_example("ruler_eval.py", argv, monkeypatch, capsys)
    assert "## Scores (0-100), context 512 tokens" in out
    assert "| method | vt | mean |" in out and "| full |" in out and "| asynctls @ 128 |" in out
    assert list(tmp_path.rglob("vt/asynctls_budget-128_len-512.json"))


def test_glm_mla_without_its_probe_says_what_to_do(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(probes, "PROBE_DIR", tmp_path)  # as if the GLM probe were not shipped
    with pytest.raises(SystemExit, match="(?s)probe checkpoint is missing .* --model PATH"):
        run_example("glm_mla.py", SMALL, monkeypatch, capsys)


@pytest.mark.parametrize(("options", "name"), [(["--granularity", "block", "--lag", "1"], "offloaded (blocks, lag 1) "),
                                              ([], "offloaded (tokens, lag 0) ")])
def test_long_context_offload(probe_checkpoint, monkeypatch, capsys, options, name):
    argv = ["--model", probe_checkpoint, "--device", "cpu", "--context", "1024", "--budget", "128", "--new-tokens", "4",
            *options]
    lines = run_example("long_context_offload.py", argv, monkeypatch, capsys).splitlines()
    assert ", budget 128; the answer is " in lines[0]
    assert lines[1].startswith("on the device ") and "hit rate 1.000, 0 KiB copied per step" in lines[2]
    assert lines[3].startswith(name) and "answer (" in lines[3]
    assert " host 0.0 MiB" not in lines[4] and "KiB copied per step" in lines[4]
