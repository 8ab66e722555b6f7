"""The offload transfer benchmark runs end to end (on the CPU, with the synchronous transport)."""

from __future__ import annotations

import json

from asynctls_hf import cli


def test_offload_transfer_bench_runs_on_cpu(tmp_path, capsys):
    argv = ["bench", "offload-transfer", "--device", "cpu", "--context", "2k", "--batches", "1,2", "--misses", "3",
            "--reps", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    rows = json.loads((tmp_path / "offload_transfer.json").read_text())["rows"]
    assert [(row["model"], row["batch"]) for row in rows] == [("gqa", 1), ("gqa", 2), ("mla", 1), ("mla", 2)]
    gqa_block = 64 * 8 * (128 + 128) * 2  # tokens x groups x (key + value width) x bf16 bytes
    assert rows[1]["megabytes"] * 1e6 == 2 * 3 * gqa_block
    assert all(row["engine_gbps"] > 0 and row["raw_gbps"] > 0 for row in rows)
    assert "| model | batch |" in (tmp_path / "offload_transfer.md").read_text()
