"""The asynctls-hf command: models, bench forwarding, help, and the errors a user can make."""

import json

import pytest
from transformers import AutoConfig, LlamaConfig

from asynctls_hf import cli, cli_options, probes


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


# ---- clear errors: one line naming the problem and the fix, exit status 2, no traceback -------------------------


def _error(argv, capsys) -> str:
    assert cli.main(argv) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return captured.err.strip().splitlines()[-1]


@pytest.fixture()
def prompt_file(tmp_path):
    path = tmp_path / "prompt.txt"
    path.write_text("The grass is green.")
    return str(path)


def _model_commands(model: str, prompt_file: str, out) -> list[list[str]]:
    return [
        ["demo", "--model", model],
        ["generate", "--model", model, "--prompt-file", prompt_file],
        ["eval", "--model", model, "--out", str(out), "--no-progress"],
    ]


def test_missing_model_path(tmp_path, prompt_file, capsys):
    missing = str(tmp_path / "no-such-model")
    for argv in _model_commands(missing, prompt_file, tmp_path):
        line = _error(argv, capsys)
        assert line.startswith(f"asynctls-hf {argv[0]}: error: model path {missing} does not exist; pass --model")


def test_directory_that_is_not_a_checkpoint(tmp_path, prompt_file, capsys):
    for argv in _model_commands(str(tmp_path), prompt_file, tmp_path / "out"):
        assert f"{tmp_path} is not a Hugging Face checkpoint: it has no config.json" in _error(argv, capsys)


def test_unsupported_model_type(tmp_path, prompt_file, capsys):
    LlamaConfig(num_hidden_layers=1).save_pretrained(tmp_path)
    for argv in _model_commands(str(tmp_path), prompt_file, tmp_path / "out"):
        line = _error(argv, capsys)
        assert "does not support model_type 'llama'; supported: deepseek_v3, glm4_moe_lite, qwen3" in line


def test_prompt_longer_than_the_model_positions(probe_checkpoint, tmp_path, capsys):
    limit = AutoConfig.from_pretrained(probe_checkpoint).max_position_embeddings
    long_prompt = tmp_path / "long.txt"
    long_prompt.write_text(" ".join(["green"] * limit))  # one token per word
    line = _error(["generate", "--model", probe_checkpoint, "--prompt-file", str(long_prompt),
                   "--max-new-tokens", "1"], capsys)  # fmt: skip
    assert f"the prompt ({limit} tokens) plus up to 1 new tokens is longer than the model's " in line
    assert f"max_position_embeddings ({limit}); shorten the prompt or lower --max-new-tokens" in line

    line = _error(["demo", "--model", probe_checkpoint, "--context", "512", "--max-new-tokens", str(limit)], capsys)
    assert f"max_position_embeddings ({limit}); lower --context or --max-new-tokens" in line


def test_missing_prompt_file(probe_checkpoint, tmp_path, capsys):
    missing = tmp_path / "no-such-prompt.txt"
    line = _error(["generate", "--model", probe_checkpoint, "--prompt-file", str(missing)], capsys)
    assert line == (
        f"asynctls-hf generate: error: prompt file {missing} does not exist; pass --prompt-file with a text file"
    )


def test_invalid_asynctls_setting(probe_checkpoint, prompt_file, capsys):
    line = _error(["generate", "--model", probe_checkpoint, "--prompt-file", prompt_file, "--block-size", "48"], capsys)
    assert line == "asynctls-hf generate: error: invalid AsyncTLS settings: block_size must be a power of two, got 48"


@pytest.mark.parametrize("option, value", [("--token-scoring", "max"), ("--label-bits", "5"),
                                           ("--offload-granularity", "tokens"), ("--backend", "cuda")])
def test_a_setting_with_fixed_choices_names_them(option, value, probe_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["eval", "--model", probe_checkpoint, "--out", str(tmp_path), option, value])
    assert exit_info.value.code == 2
    assert f"argument {option}: invalid choice" in capsys.readouterr().err


def test_demo_without_the_shipped_probe_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(probes, "PROBE_DIR", tmp_path)
    line = _error(["demo"], capsys)
    assert "the qwen3 probe checkpoint is missing" in line
    assert line.endswith("; or pass --model with a local checkpoint directory")


@pytest.mark.parametrize("command", ["demo", "generate", "eval"])
def test_every_option_is_explained_in_help(command):
    (subparsers,) = [action for action in cli.build_parser()._actions if action.choices and command in action.choices]
    options = [action for action in subparsers.choices[command]._actions if action.option_strings]
    assert options and all(action.help for action in options), [a.option_strings for a in options if not a.help]


def test_asynctls_options_are_shared_by_demo_generate_and_eval():
    parser = cli.build_parser()
    (subparsers,) = [action for action in parser._actions if action.choices and "eval" in action.choices]
    names = {
        command: {name for action in subparsers.choices[command]._actions for name in action.option_strings}
        for command in ("demo", "generate", "eval")
    }
    shared = {"--device", "--dtype", "--max-new-tokens", "--seed", "--model"}
    shared |= {f"--{name.replace('_', '-')}" for name in cli_options.CONFIG_OPTIONS}
    assert all(shared <= options for options in names.values())
    assert "--budget" in names["demo"] and "--budget" in names["generate"] and "--budgets" in names["eval"]


def test_integer_lists_take_k_suffixes_and_reject_garbage():
    import argparse

    from asynctls_hf.cli_options import integer_list

    assert integer_list("16384, 32k,") == [16384, 32768]
    for bad in ("", "12,abc", "0", "-4k"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            integer_list(bad)


def test_a_token_count_takes_a_k_suffix_and_one_value():
    import argparse

    from asynctls_hf.cli_options import token_count

    assert token_count("16k") == 16384 and token_count("999") == 999
    for bad in ("16k,32k", "abc", "0"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected"):
            token_count(bad)


def test_cache_too_large_for_the_device_is_one_line(probe_checkpoint, prompt_file, monkeypatch, capsys):
    from asynctls_hf.cache import cache as cache_module

    monkeypatch.setattr(cache_module, "free_device_memory", lambda device: 1024)
    line = _error(["generate", "--model", probe_checkpoint, "--prompt-file", str(prompt_file)], capsys)
    assert line.startswith("asynctls-hf generate: error: the AsyncTLS cache for 1 sequence(s) of up to ")
    assert "GiB is free: generate with a smaller batch" in line


def test_bench_ops_redraws_its_plot_from_json_without_a_gpu(tmp_path):
    rows = [
        {"model": model, "batch": batch, "budget": 1024, "context": context, "speedup_graph": context / 32768 * batch}
        for model in ("gqa", "mla") for batch in (1, 4) for context in (32768, 98304)
    ]
    results = tmp_path / "ops_bench.json"
    results.write_text(json.dumps({"rows": rows}))
    assert cli.main(["bench", "ops", "--replot", str(results), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "ops_speedup.png").stat().st_size > 10_000


def test_locality_command(probe_checkpoint, tmp_path):
    argv = ["locality", "--model", probe_checkpoint, "--context-lengths", "640", "--samples", "1", "--steps", "3",
            "--budget", "64", "--block-size", "16", "--top-blocks", "4", "--sink-tokens", "4", "--local-tokens", "8",
            "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    assert list(tmp_path.glob("*/locality_niah_single_2_budget-64.md"))
