"""Temporal locality of block selection: how many of the blocks a layer keeps at one decode step it kept the step
before.

    python -m asynctls_hf.eval.locality --model PATH --task niah_single_2 --context-lengths 16384,32768 \\
        --samples 4 --steps 32 --budget 1024 --out locality_results

For each layer, the share of the blocks that block filtering kept at decode step t (per batch row and KV group)
that it also kept at step t-1, averaged over rows, groups, steps and samples. The offload engine prefetches from
the previous step's selection, so this share is the part of a step's blocks it finds already on the device.
Only consecutive sparse steps are compared: while the context fits the token budget, decoding is dense and keeps
no blocks. Writes `OUT/MODEL/locality_TASK_budget-B.json` and a markdown table (layers x context lengths) beside it.

`--offload-traffic` also decodes the same samples with the cache offloaded in each of OFFLOAD_MODES (whole blocks
or the selected tokens, with prefetch lag 1 and 0, and by tokens with lag 1 also without the successors) and
reports the offload engine's hit rate and the bytes it copies per layer and decode step for one sequence: what the
locality costs the bus on this model (multiply by the layers and the batch for a step).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

import torch

from asynctls_hf.api import cache_argument, patched
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.cli_options import (
    CONFIG_DEFAULTS,
    add_config_arguments,
    add_device_arguments,
    config_fields,
    integer_list,
)
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import greedy_arguments, load_model
from asynctls_hf.eval.methods import method_config
from asynctls_hf.eval.runner import key_width


def block_overlap(
    previous_blocks: torch.Tensor,
    previous_valid: torch.Tensor,
    kept_blocks: torch.Tensor,
    kept_valid: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Share of each group's valid kept blocks that were valid kept blocks the step before.

    previous_blocks, previous_valid [B, NG, Kp]; kept_blocks, kept_valid [B, NG, Kb] (block indices, and False
    for picks that are not real selections). Returns shares [B, NG] float32 (0 where no block was kept) and
    counted [B, NG] bool (True where at least one block was kept).
    """
    kept_before = (kept_blocks[..., :, None] == previous_blocks[..., None, :]) & previous_valid[..., None, :]
    shared = (kept_before.any(dim=-1) & kept_valid).sum(dim=-1)
    kept = kept_valid.sum(dim=-1)
    return shared / kept.clamp(min=1), kept > 0


class LocalityRecorder:
    """An AsyncTLSCache.block_recorder that accumulates each layer's block overlap between consecutive steps.

    Attach it with `cache.block_recorder = recorder` and call `start_sequence()` before decoding each new
    sequence, so that its first step is not compared with another sequence's last. Sums stay on the device
    until `summary()` reads them.
    """

    def __init__(self, num_layers: int):
        self._previous: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * num_layers
        self._share_sums: list[torch.Tensor | float] = [0.0] * num_layers
        self._counted: list[torch.Tensor | int] = [0] * num_layers
        self.compared_steps = [0] * num_layers

    def start_sequence(self) -> None:
        self._previous = [None] * len(self._previous)

    def __call__(self, layer_idx: int, kept_blocks: torch.Tensor, kept_valid: torch.Tensor) -> None:
        """Record one sparse decode step of layer `layer_idx`: kept_blocks, kept_valid [B, NG, Kb]."""
        previous = self._previous[layer_idx]
        self._previous[layer_idx] = (kept_blocks, kept_valid)
        if previous is None:
            return
        shares, counted = block_overlap(*previous, kept_blocks, kept_valid)
        self._share_sums[layer_idx] = self._share_sums[layer_idx] + shares.sum(dtype=torch.float64)
        self._counted[layer_idx] = self._counted[layer_idx] + counted.sum()
        self.compared_steps[layer_idx] += 1

    def summary(self) -> dict:
        """{"per_layer": mean share of each layer (None if never compared), "mean": mean over the layers compared,
        "steps": step pairs compared per layer}. Reading it synchronizes the device."""
        per_layer = [
            float(share_sum) / int(counted) if int(counted) else None
            for share_sum, counted in zip(self._share_sums, self._counted, strict=True)
        ]
        measured = [share for share in per_layer if share is not None]
        return {
            "per_layer": per_layer,
            "mean": sum(measured) / len(measured) if measured else None,
            "steps": max(self.compared_steps),
        }


@torch.no_grad()
def measure_locality(model, tokenizer, samples: list[dict], config: AsyncTLSConfig, steps: int) -> dict:
    """Decode `steps` greedy tokens after each sample's prompt with `config` and measure the temporal locality.

    samples: dicts holding the prompt text under "input" (as the RULER generators make them), decoded one at a
    time. End-of-sequence tokens do not stop decoding, so each sample has steps - 1 decode steps (the first token
    comes from the prefill) and, when they are all sparse, steps - 2 pairs of consecutive steps to compare.
    Returns LocalityRecorder.summary() over all samples: "steps" counts the pairs compared per layer.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2 (two decode steps to compare), got {steps}")
    recorder = LocalityRecorder(model.config.get_text_config(decoder=True).num_hidden_layers)
    with patched(model, config):
        for sample in samples:
            inputs = tokenizer(sample["input"], return_tensors="pt").to(model.device)
            cache = AsyncTLSCache.for_model(model, config, max_length=inputs["input_ids"].shape[1] + steps)
            cache.block_recorder = recorder
            recorder.start_sequence()
            arguments = greedy_arguments(model, tokenizer, inputs, max_new_tokens=steps, min_new_tokens=steps)
            model.generate(**arguments, **{cache_argument(model): cache})
    return recorder.summary()


OFFLOAD_MODES = {
    "blocks, lag 1": dict(offload=True, prefetch_lag=1, offload_granularity="block"),
    "blocks, lag 0": dict(offload=True, prefetch_lag=0, offload_granularity="block"),
    "tokens, lag 0": dict(offload=True, prefetch_lag=0, offload_granularity="token"),
    "tokens, lag 1": dict(offload=True, prefetch_lag=1, offload_granularity="token"),
    "tokens, lag 1, no successors": dict(offload=True, prefetch_lag=1, offload_granularity="token",
                                         prefetch_successors=0),
}


@torch.no_grad()
def measure_offload_traffic(model, tokenizer, samples: list[dict], config: AsyncTLSConfig, steps: int) -> dict:
    """Decode `steps` greedy tokens after each sample's prompt with the cache offloaded in each of OFFLOAD_MODES.

    Returns {mode: {"hit_rate": share of the wanted blocks (tokens) already resident, "bytes_per_layer_step": bytes
    copied host to device per layer and sparse decode step of one sequence, "sparse_layer_steps": steps counted}},
    summed over the samples (each decoded alone).
    """
    traffic = {}
    for mode, settings in OFFLOAD_MODES.items():
        mode_config = config.replace(**settings)
        copied = wanted = hits = layer_steps = 0
        with patched(model, mode_config):
            for sample in samples:
                inputs = tokenizer(sample["input"], return_tensors="pt").to(model.device)
                cache = AsyncTLSCache.for_model(model, mode_config, max_length=inputs["input_ids"].shape[1] + steps)
                arguments = greedy_arguments(model, tokenizer, inputs, max_new_tokens=steps, min_new_tokens=steps)
                model.generate(**arguments, **{cache_argument(model): cache})
                stats = cache.stats()
                copied += stats["h2d_bytes"]
                layer_steps += stats["sparse_layer_steps"]
                wanted += sum(layer["wanted_blocks"] for layer in stats.get("layers", []))
                hits += sum(layer["hit_blocks"] for layer in stats.get("layers", []))
        traffic[mode] = {
            "hit_rate": hits / wanted if wanted else None,
            "bytes_per_layer_step": copied / layer_steps if layer_steps else None,
            "sparse_layer_steps": layer_steps,
        }
    return traffic


def run_locality(model, tokenizer, task: str, context_lengths: list[int], samples: int, steps: int,
                 config: AsyncTLSConfig, out_dir: str | Path, *, model_name: str, seed: int = 0,
                 chat: bool = False, offload_traffic: bool = False) -> Path:
    """Measure the locality of RULER task `task` at each context length (and, with offload_traffic, what each
    offload mode copies); write the JSON and markdown table.

    Returns the JSON's path, `OUT/MODEL/locality_TASK_budget-B.json` (the table has the suffix .md).
    """
    results = []
    for length in context_lengths:
        task_samples = ruler.TASKS[task].samples(tokenizer, length, samples, seed, chat=chat)
        locality = measure_locality(model, tokenizer, task_samples, config, steps)
        results.append({"length": length, **locality})
        mean = "-" if locality["mean"] is None else f"{locality['mean']:.3f}"
        print(f"context {length}: mean locality {mean} over {locality['steps']} step pairs", file=sys.stderr)
        if offload_traffic:
            results[-1]["offload_traffic"] = measure_offload_traffic(model, tokenizer, task_samples, config, steps)
    run_dir = Path(out_dir) / model_name
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / f"locality_{task}_budget-{config.token_budget}.json"
    settings = {
        "model": model_name, "task": task, "context_lengths": context_lengths, "samples": samples, "steps": steps,
        "seed": seed, "chat": chat, "config": dataclasses.asdict(config), "dtype": str(model.dtype),
        "device": str(model.device), "torch": torch.__version__,
    }  # fmt: skip
    json_path.write_text(json.dumps({"settings": settings, "results": results}, indent=2) + "\n")
    json_path.with_suffix(".md").write_text(locality_table(results, task, config.token_budget, samples, steps))
    return json_path


def locality_table(results: list[dict], task: str, budget: int, samples: int, steps: int) -> str:
    """Markdown: one row per layer, one column per context length, then the mean and the step pairs compared."""
    lengths = [result["length"] for result in results]
    lines = [
        f"# Temporal locality: {task}, token budget {budget}",
        "",
        "Share of the blocks kept at decode step t that were also kept at step t-1 (mean over batch rows, KV "
        f"groups, steps and {samples} samples of {steps} generated tokens each).",
        "",
        "| layer | " + " | ".join(str(length) for length in lengths) + " |",
        "|---" * (len(lengths) + 1) + "|",
    ]

    def cells(values) -> str:
        return " | ".join("-" if value is None else f"{value:.3f}" for value in values)

    for layer in range(len(results[0]["per_layer"]) if results else 0):
        lines.append(f"| {layer} | {cells(result['per_layer'][layer] for result in results)} |")
    lines.append(f"| mean | {cells(result['mean'] for result in results)} |")
    lines.append("| step pairs | " + " | ".join(str(result["steps"]) for result in results) + " |")
    if results and "offload_traffic" in results[0]:
        lines += [
            "",
            "Offloaded (`--offload-traffic`): hit rate, and KB copied host to device per layer and decode step of one "
            "sequence.",
            "",
            "| mode | " + " | ".join(f"{length} hit rate | {length} KB" for length in lengths) + " |",
            "|---" * (2 * len(lengths) + 1) + "|",
        ]
        for mode in results[0]["offload_traffic"]:
            row = []
            for result in results:
                traffic = result["offload_traffic"][mode]
                row += [
                    "-" if traffic["hit_rate"] is None else f"{traffic['hit_rate']:.3f}",
                    "-" if traffic["bytes_per_layer_step"] is None else f"{traffic['bytes_per_layer_step'] / 1e3:.1f}",
                ]
            lines.append(f"| {mode} | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


# ---- command line ------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The locality measurement's options."""
    parser.add_argument("--model", required=True, help="local Hugging Face checkpoint directory (causal LM)")
    parser.add_argument("--task", default="niah_single_2", choices=list(ruler.TASKS),
                        help="RULER task whose prompts are decoded (default: niah_single_2)")
    parser.add_argument("--context-lengths", type=integer_list, default=[16384],
                        help="tokens, comma-separated; k = 1024 (default: 16384)")
    parser.add_argument("--samples", type=int, default=4, help="prompts per context length")
    parser.add_argument("--steps", type=int, default=32, help="tokens generated per prompt (at least 2)")
    parser.add_argument("--out", default="locality_results", help="output directory")
    add_device_arguments(parser)
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated samples (default: 0)")
    parser.add_argument("--chat", action="store_true", help="wrap prompts in the tokenizer's chat template")
    parser.add_argument("--offload-traffic", action="store_true",
                        help="also decode offloaded (blocks lag 1 and 0, tokens) and report hit rates and bytes copied")
    add_config_arguments(parser)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Load the model named by parsed arguments and measure its locality."""
    model, tokenizer = load_model(args.model, args.device, args.dtype)
    base_config = config_fields(args)
    budget = base_config.pop("token_budget", CONFIG_DEFAULTS["token_budget"])
    config = method_config("asynctls", budget, key_width(model), **base_config)
    json_path = run_locality(
        model, tokenizer, args.task, args.context_lengths, args.samples, args.steps, config, args.out,
        model_name=os.path.basename(os.path.normpath(args.model)), seed=args.seed, chat=args.chat,
        offload_traffic=args.offload_traffic,
    )  # fmt: skip
    print(f"locality written to {json_path} and {json_path.with_suffix('.md')}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m asynctls_hf.eval.locality", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
