"""Temporal locality: the cache's block recorder, the overlap of consecutive selections, the command."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import greedy, left_padded_batch, tiny_qwen3

import asynctls_hf
from asynctls_hf import AsyncTLSCache, AsyncTLSConfig
from asynctls_hf.api import cache_argument
from asynctls_hf.eval import locality, ruler
from asynctls_hf.eval.generation import load_model

SPARSE = dict(block_size=16, token_budget=128, sink_tokens=4, local_tokens=16, backend="torch")
LENGTHS = [300, 180]
STEPS = 5


def generate_recording(model, config: AsyncTLSConfig):
    """Greedy STEPS tokens for a left-padded batch of LENGTHS rows, recording every call of the block recorder
    as (layer_idx, kept_blocks, kept_valid, the step's plan.block_valid); returns (output, calls)."""
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    cache = AsyncTLSCache.for_model(model, config, max_length=input_ids.shape[1] + STEPS)
    calls = []

    def record(layer_idx, kept_blocks, kept_valid):
        plan = cache.decode_plan(cache.layers[layer_idx].length, kept_blocks.device)
        calls.append((layer_idx, kept_blocks, kept_valid, plan.block_valid))

    cache.block_recorder = record
    with asynctls_hf.patched(model, config), torch.no_grad():
        output = greedy(model, input_ids, attention_mask, STEPS, **{cache_argument(model): cache})
    return output, calls


@pytest.mark.parametrize("top_blocks", [8, 64])
def test_recorder_sees_the_kept_blocks_of_each_sparse_step_of_each_layer(top_blocks):
    model = tiny_qwen3()
    config = AsyncTLSConfig(top_blocks=top_blocks, **SPARSE)
    output, calls = generate_recording(model, config)

    # The prefill gives the first token; each of the other STEPS - 1 is a sparse decode step of both layers.
    assert [layer_idx for layer_idx, *_ in calls] == [0, 1] * (STEPS - 1)
    n_blocks = -(-(max(LENGTHS) + STEPS) // config.block_size)
    for _, kept_blocks, kept_valid, block_valid in calls:
        assert kept_blocks.shape == kept_valid.shape == (len(LENGTHS), 2, min(top_blocks, n_blocks))
        for row in range(len(LENGTHS)):
            # A pick is valid exactly when its block holds candidate slots (not padding, sinks only, the local
            # window or the future); with more picks than blocks, every such block is picked.
            assert torch.equal(kept_valid[row], block_valid[row, kept_blocks[row]])
            if top_blocks >= n_blocks:
                for group in range(2):
                    picked = set(kept_blocks[row, group][kept_valid[row, group]].tolist())
                    assert picked == set(block_valid[row].nonzero().flatten().tolist())
        if top_blocks < n_blocks:
            assert kept_valid.all()

    # Recording changes nothing in what is decoded.
    input_ids, attention_mask = left_padded_batch(LENGTHS)
    with asynctls_hf.patched(model, config), torch.no_grad():
        unrecorded = greedy(model, input_ids, attention_mask, STEPS)
    assert torch.equal(unrecorded.sequences, output.sequences)


def test_dense_steps_keep_no_blocks():
    _, calls = generate_recording(tiny_qwen3(), AsyncTLSConfig(**{**SPARSE, "token_budget": 1024}))
    assert calls == []


def test_block_overlap_against_hand_computed_shares():
    previous_blocks = torch.tensor([[[3, 5, 7, 9], [0, 1, 2, 3]]])
    previous_valid = torch.tensor([[[True, True, True, False], [True, True, True, True]]])
    kept_blocks = torch.tensor([[[5, 9, 7], [1, 6, 8]]])
    kept_valid = torch.tensor([[[True, True, True], [False, False, False]]])
    shares, counted = locality.block_overlap(previous_blocks, previous_valid, kept_blocks, kept_valid)
    # Group 0 keeps {5, 9, 7}; of these only 5 and 7 were valid picks before (9 was a filler). Group 1 keeps nothing.
    torch.testing.assert_close(shares, torch.tensor([[2 / 3, 0.0]]))
    assert counted.tolist() == [[True, False]]


def test_recorder_averages_consecutive_steps_per_layer_and_not_across_sequences():
    def step(*blocks):
        return torch.tensor([[blocks]]), torch.ones(1, 1, len(blocks), dtype=torch.bool)

    recorder = locality.LocalityRecorder(num_layers=3)
    for kept in (step(0, 1), step(1, 2), step(1, 2)):
        recorder(0, *kept)
    for kept in (step(0, 1), step(1, 2)):
        recorder(1, *kept)
    summary = recorder.summary()
    assert summary["per_layer"] == [0.75, 0.5, None]
    assert summary["mean"] == 0.625 and summary["steps"] == 2

    recorder.start_sequence()
    recorder(1, *step(7, 8))  # the first step of a new sequence is compared with nothing
    recorder(1, *step(7, 8))
    assert recorder.summary()["per_layer"][1] == 0.75 and recorder.compared_steps == [2, 2, 0]


def test_measure_locality_decodes_every_step_of_every_sample(tiny_checkpoint, word_tokenizer):
    model, tokenizer = load_model(tiny_checkpoint, device="cpu")
    samples = ruler.TASKS["niah_single_2"].samples(tokenizer, 1024, 2, seed=0)
    config = AsyncTLSConfig(top_blocks=8, **SPARSE)
    result = locality.measure_locality(model, tokenizer, samples, config, steps=4)
    # End-of-sequence does not stop decoding: each sample compares its 3 decode steps' 2 consecutive pairs.
    assert result["steps"] == 2 * 2
    assert len(result["per_layer"]) == 2 and all(0 <= share <= 1 for share in result["per_layer"])
    assert result["mean"] == pytest.approx(sum(result["per_layer"]) / 2)
    with pytest.raises(ValueError, match="steps"):
        locality.measure_locality(model, tokenizer, samples, config, steps=1)


def test_command_writes_json_and_table(tiny_checkpoint, tmp_path):
    argv = ["--model", tiny_checkpoint, "--task", "niah_single_1", "--context-lengths", "512,1024", "--samples",
            "1", "--steps", "3", "--budget", "128", "--block-size", "16", "--sink-tokens", "4", "--local-tokens",
            "16", "--out", str(tmp_path), "--device", "cpu"]  # fmt: skip
    assert locality.main(argv) == 0

    written = json.loads((tmp_path / "tiny-qwen3" / "locality_niah_single_1_budget-128.json").read_text())
    assert written["settings"]["config"]["token_budget"] == 128 and written["settings"]["config"]["block_size"] == 16
    assert [result["length"] for result in written["results"]] == [512, 1024]
    assert all(result["steps"] == 1 and len(result["per_layer"]) == 2 for result in written["results"])
    table = (tmp_path / "tiny-qwen3" / "locality_niah_single_1_budget-128.md").read_text()
    assert "| layer | 512 | 1024 |" in table
    assert "| 0 | " in table and "| 1 | " in table and "| step pairs | 1 | 1 |" in table


def test_offload_traffic_is_measured_for_every_mode(tiny_checkpoint, tmp_path):
    """--offload-traffic decodes the samples offloaded in each mode: the token mode copies fewer bytes than whole
    blocks, and the table has a row per mode."""
    argv = ["--model", tiny_checkpoint, "--task", "niah_single_1", "--context-lengths", "1024", "--samples", "1",
            "--steps", "6", "--budget", "64", "--block-size", "16", "--top-blocks", "8", "--sink-tokens", "4",
            "--local-tokens", "16", "--out", str(tmp_path), "--device", "cpu", "--offload-traffic"]  # fmt: skip
    assert locality.main(argv) == 0
    written = json.loads((tmp_path / "tiny-qwen3" / "locality_niah_single_1_budget-64.json").read_text())
    traffic = written["results"][0]["offload_traffic"]
    assert list(traffic) == list(locality.OFFLOAD_MODES)
    assert all(mode["sparse_layer_steps"] == 5 * 2 and 0 < mode["hit_rate"] < 1 for mode in traffic.values())
    assert 0 < traffic["tokens, lag 0"]["bytes_per_layer_step"] < traffic["blocks, lag 0"]["bytes_per_layer_step"]
    table = (tmp_path / "tiny-qwen3" / "locality_niah_single_1_budget-64.md").read_text()
    assert all(f"| {mode} | " in table for mode in locality.OFFLOAD_MODES)
