"""The offload transfer benchmark runs end to end (on the CPU, with the synchronous transport)."""

from __future__ import annotations

import json

import pytest

from asynctls_hf import cli


def test_offload_transfer_bench_runs_on_cpu(tmp_path, capsys):
    argv = ["bench", "offload-transfer", "--device", "cpu", "--context", "2k", "--batches", "1,2", "--misses", "3",
            "--reps", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    rows = json.loads((tmp_path / "offload_transfer.json").read_text())["rows"]
    assert [(row["model"], row["batch"]) for row in rows] == [("gqa", 1), ("gqa", 2), ("mla", 1), ("mla", 2)]
    gqa_block = 64 * 8 * (128 + 128) * 2  # tokens x groups x (key + value width) x bf16 bytes
    assert rows[1]["megabytes"] * 1e6 == 2 * 3 * gqa_block
    assert all(row["engine_gbps"] > 0 and row["raw_gbps"] > 0 and row["copy_gbps"] > 0 for row in rows)
    assert "| model | batch |" in (tmp_path / "offload_transfer.md").read_text()


def test_offload_decode_bench_runs_on_cpu(tmp_path):
    argv = ["bench", "offload-decode", "--device", "cpu", "--attention", "mla", "--layers", "2", "--batch", "2",
            "--context-lengths", "700,1100", "--steps", "3", "--warmup", "1", "--budget", "96", "--block-size", "16",
            "--top-blocks", "10", "--sink-tokens", "4", "--local-tokens", "16", "--drift", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    rows = json.loads((tmp_path / "offload_decode.json").read_text())["rows"]
    assert [(row["placement"], row["context"]) for row in rows] == [
        (placement, context)
        for placement in ("resident", "offload lag 0", "offload lag 1", "offload tokens", "offload tokens lag 1")
        for context in (700, 1100)
    ]
    for row in rows:
        offloaded = row["placement"] != "resident"
        assert (row["copied_mb"] > 0) == offloaded and (row["hit_rate"] < 1) == offloaded
        assert row["step_ms"] > 0 and row["slowdown"] > 0
    assert "| offload lag 1 | 1100 |" in (tmp_path / "offload_decode.md").read_text()


def test_offload_decode_bench_runs_a_chosen_placement_with_the_dense_layer_on_cpu(tmp_path):
    argv = ["bench", "offload-decode", "--device", "cpu", "--attention", "gqa", "--layers", "2", "--batch", "1",
            "--context-lengths", "700", "--steps", "2", "--warmup", "1", "--budget", "96", "--block-size", "16",
            "--top-blocks", "10", "--sink-tokens", "4", "--local-tokens", "16", "--placements", "lag1",
            "--dense-layer", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    result = json.loads((tmp_path / "offload_decode.json").read_text())
    assert result["environment"]["dense_layer"] is True
    assert [row["placement"] for row in result["rows"]] == ["offload lag 1"]
    assert "slowdown" not in result["rows"][0] and "vs resident" not in (tmp_path / "offload_decode.md").read_text()


@pytest.mark.parametrize(("argv", "message"), [
    (["--attention", "mla", "--dense-layer"], "--dense-layer models the Qwen3-8B"),
    (["--placements", "lag2"], "placements must be a comma-separated list"),
    (["--copy-programs", "-1"], "--copy-programs must be 0"),
    (["--profile", "-1"], "--profile is a number of steps"),
])
def test_offload_decode_bench_names_a_bad_option(argv, message, capsys):
    from asynctls_hf.bench.offload_decode_bench import parse_args

    with pytest.raises(SystemExit):
        parse_args(argv)
    assert message in capsys.readouterr().err


def test_generate_bench_parses_its_runs_and_names_a_bad_one():
    import argparse

    import pytest

    from asynctls_hf.bench.generate_bench import parse_runs

    assert parse_runs("stock:4, offload:7,offload-token:2") == [("stock", 4), ("offload", 7), ("offload-token", 2)]
    for bad in ("", "dense:4", "stock", "stock:0"):
        with pytest.raises(argparse.ArgumentTypeError, match="METHOD:BATCH"):
            parse_runs(bad)


@pytest.mark.gpu
def test_offload_decode_bench_replays_a_graph_on_the_gpu(tmp_path):
    """With the dense layer, a high-priority copy stream and the copy kernel's grid capped, as the overlap
    measurements run it."""
    argv = ["bench", "offload-decode", "--attention", "gqa", "--layers", "2", "--batch", "2", "--context-lengths",
            "700,1100", "--steps", "4", "--warmup", "2", "--budget", "96", "--block-size", "16", "--top-blocks", "10",
            "--sink-tokens", "4", "--local-tokens", "16", "--drift", "2", "--dense-layer", "--copy-stream-priority",
            "-1", "--copy-programs", "16", "--profile", "2", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    rows = json.loads((tmp_path / "offload_decode.json").read_text())["rows"]
    assert all(row["graphed"] for row in rows)
    for row in rows:
        offloaded = row["placement"] != "resident"
        assert (row["copied_mb"] > 0) == offloaded and (row["hit_rate"] < 1) == offloaded
        kernels = [name for name, *_ in row["profile"]["kernels"]]
        assert kernels and (not offloaded or any("copy_rows" in name for name in kernels)), kernels
    assert "## offload tokens, context 1100" in (tmp_path / "offload_decode_profile.md").read_text()


def test_results_are_written_after_every_row(tmp_path):
    """A benchmark cut short by a time limit keeps the rows it finished: each call rewrites both files."""
    from asynctls_hf.bench.offload_transfer_bench import write_results

    columns = [("method", "method", "{}"), ("step_ms", "step ms", "{:.2f}")]
    rows = [{"method": "graphed", "step_ms": 9.9}]
    write_results(tmp_path / "out", "decode_step", "# Decode step\n\n", {"device": "cpu"}, rows, columns)
    rows.append({"method": "graphed-offload-token", "step_ms": 16.1})
    write_results(tmp_path / "out", "decode_step", "# Decode step\n\n", {"device": "cpu"}, rows, columns)
    written = json.loads((tmp_path / "out" / "decode_step.json").read_text())
    assert written == {"environment": {"device": "cpu"}, "rows": rows}
    table = (tmp_path / "out" / "decode_step.md").read_text()
    assert table.startswith("# Decode step\n\n| method | step ms |") and "| graphed-offload-token | 16.10 |" in table
