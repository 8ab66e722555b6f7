"""The asynctls-hf command: models, bench forwarding, help."""

import pytest

from asynctls_hf import cli


def test_models_lists_supported_types(capsys):
    assert cli.main(["models"]) == 0
    assert capsys.readouterr().out.split() == ["deepseek_v3", "glm4_moe_lite", "qwen3"]


@pytest.mark.parametrize("name", sorted(cli.BENCHMARKS))
def test_bench_forwards_options_to_the_benchmark(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["bench", name, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage" in out and "the benchmark's own options" not in out  # the benchmark's help, not ours


def test_unknown_benchmark_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["bench", "nope"])
    assert "invalid choice" in capsys.readouterr().err
