"""`asynctls-hf generate`: the continuation streamed to stdout, then the decode speed and cache stats."""

from __future__ import annotations

import re

import pytest

from asynctls_hf import AsyncTLSConfig, cli
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import greedy_generate, load_model


def test_generate_streams_the_asynctls_continuation_then_the_stats(probe_checkpoint, tmp_path, capsys):
    prompt = (ruler.NOISE + " ") * 20
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text(prompt)
    options = ["--max-new-tokens", "5", "--budget", "96", "--block-size", "16", "--device", "cpu"]
    assert cli.main(["generate", "--model", probe_checkpoint, "--prompt-file", str(prompt_file), *options]) == 0
    out, err = capsys.readouterr()

    model, tokenizer = load_model(probe_checkpoint, device="cpu")
    expected, stats = greedy_generate(model, tokenizer, prompt, 5, AsyncTLSConfig(token_budget=96, block_size=16))
    assert out == expected + "\n"
    counts = re.search(r"prompt (\d+) tokens, (\d+) generated, decode ", err)
    assert int(counts[1]) == len(tokenizer(prompt)["input_ids"]) and 1 <= int(counts[2]) <= 5
    assert f"cache stats: attended_tokens={stats['attended_tokens']}, " in err and "memory_bytes=" in err
    assert stats["attended_tokens"] == 96


def test_generate_with_the_cache_offloaded(probe_checkpoint, tmp_path, capsys):
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text((ruler.NOISE + " ") * 20)
    options = ["--max-new-tokens", "4", "--budget", "96", "--block-size", "16", "--top-blocks", "8",
               "--device", "cpu", "--offload", "true", "--prefetch-lag", "0"]
    assert cli.main(["generate", "--model", probe_checkpoint, "--prompt-file", str(prompt_file), *options]) == 0
    err = capsys.readouterr().err
    assert "offloaded=True" in err and re.search(r"h2d_bytes=[1-9]\d*", err) and "host_memory_bytes=" in err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["generate", "--model", probe_checkpoint, "--prompt-file", str(prompt_file), "--offload", "sometimes"])
    assert exit_info.value.code == 2 and "expected false, true or auto" in capsys.readouterr().err
