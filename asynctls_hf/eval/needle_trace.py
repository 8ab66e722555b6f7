"""Needle trace: at which selection stage a method keeps or loses the needle.

For a needle-in-a-haystack sample, the needle's value tokens sit at known positions of the prompt. At each
sparse decode step and layer this records, for each KV group:
    block recall  the share of the needle's tokens whose block survived block filtering (the min/max bound);
    token recall  the share of the needle's tokens that ended up among the attended tokens (after the labels).
A method that loses the needle at the block filter shows low block recall; one whose labels drop it shows block
recall above token recall. The first answer token comes from the (dense) prefill, so this traces the decode steps
that write the rest of the answer.

    asynctls-hf needle-trace --model PATH --task niah_single_2 --context-lengths 16384 \\
        --methods asynctls,quest,double-sparsity --budgets 512 --samples 5 --steps 4 --out DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from asynctls_hf.api import cache_argument, patched
from asynctls_hf.cache import AsyncTLSCache
from asynctls_hf.cli_options import add_config_arguments, add_device_arguments, config_fields, integer_list
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.eval import ruler
from asynctls_hf.eval.fidelity import observe_selections
from asynctls_hf.eval.generation import load_model
from asynctls_hf.eval.methods import METHODS, method_config
from asynctls_hf.eval.runner import key_width

SPARSE_METHODS = [name for name, method in METHODS.items() if method.settings is not None]


def _mean(values: list[float | None]) -> float | None:
    """Mean of the values that are not None (None if there are none)."""
    values = [value for value in values if value is not None]
    return sum(values) / len(values) if values else None


def needle_positions(tokenizer, prompt_ids: list[int], value: str) -> list[int]:
    """Positions in prompt_ids of the tokens of `value` where the prompt first states it.

    Raises ValueError when the value's tokens do not appear as such in the prompt (a tokenizer that merges them
    with the surrounding text).
    """
    value_ids = tokenizer(value, add_special_tokens=False)["input_ids"]
    for start in range(len(prompt_ids) - len(value_ids) + 1):
        if prompt_ids[start : start + len(value_ids)] == value_ids:
            return list(range(start, start + len(value_ids)))
    raise ValueError(f"the tokens of {value!r} do not appear in the prompt; cannot trace this needle")


def stage_recalls(
    needle: torch.Tensor, block_size: int, kept_blocks: torch.Tensor | None, kept_valid: torch.Tensor | None,
    slots: torch.Tensor, valid: torch.Tensor,
) -> tuple[float | None, float]:
    """(block recall, token recall) of one layer and step for one sequence.

    needle [N] slots of the needle's tokens; kept_blocks, kept_valid [1, NG, Kb] (None when the method has no
    block stage); slots, valid [1, NG, K] the attended slots. Each is the mean over groups and needle tokens.
    """
    token_hits = ((slots[0, :, None, :] == needle[None, :, None]) & valid[0, :, None, :]).any(dim=-1)  # [NG, N]
    if kept_blocks is None:
        return None, token_hits.float().mean().item()
    needle_blocks = needle // block_size
    block_hits = ((kept_blocks[0, :, None, :] == needle_blocks[None, :, None]) & kept_valid[0, :, None, :]).any(-1)
    return block_hits.float().mean().item(), token_hits.float().mean().item()


@torch.no_grad()
def trace_needle(model, tokenizer, prompt: str, value: str, config: AsyncTLSConfig, steps: int) -> dict:
    """Prefill `prompt` with `config`, decode `steps` greedy tokens, and trace the needle stating `value`.

    Returns {"block": [per-layer mean block recall or None], "token": [per-layer mean token recall or None],
    "steps": sparse steps observed}; layers never decoded sparsely hold None.
    """
    prompt_ids = tokenizer(prompt)["input_ids"]
    needle = torch.tensor(needle_positions(tokenizer, prompt_ids, value), device=model.device)
    cache = AsyncTLSCache.for_model(model, config)
    layer_index = {id(layer): index for index, layer in enumerate(cache.layers)}
    kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    records: list[list[tuple[float | None, float]]] = [[] for _ in cache.layers]

    def record_kept(layer_idx, kept_blocks, kept_valid):
        kept[layer_idx] = (kept_blocks, kept_valid)

    def observe(query, layer, plan, slots, valid):
        index = layer_index[id(layer)]
        kept_blocks, kept_valid = kept.pop(index, (None, None))
        records[index].append(stage_recalls(needle, config.block_size, kept_blocks, kept_valid, slots, valid))

    cache.block_recorder = record_kept
    cache_kwargs = {cache_argument(model): cache}
    input_ids = torch.tensor([prompt_ids], device=model.device)
    with patched(model, config), observe_selections(observe):
        logits = model(input_ids=input_ids, **cache_kwargs).logits
        for _ in range(steps):
            logits = model(input_ids=logits[:, -1:].argmax(dim=-1), **cache_kwargs).logits

    return {
        "block": [_mean([block for block, _ in layer]) for layer in records],
        "token": [_mean([token for _, token in layer]) for layer in records],
        "steps": max(len(layer) for layer in records),
    }


def run_trace(model, tokenizer, task: str, lengths: list[int], methods: list[str], budgets: list[int],
              samples: int, steps: int, base_config: dict, out_dir: Path, model_name: str, seed: int = 0) -> Path:
    """Trace every (length, method, budget) over `samples` samples of `task`; write JSON and markdown."""
    results = []
    for length in lengths:
        task_samples = ruler.TASKS[task].make_samples(tokenizer, length, samples, seed)
        for method in methods:
            for budget in budgets:
                config = method_config(method, budget, key_width(model), **base_config)
                traces = [trace_needle(model, tokenizer, sample["input"], sample["outputs"][0], config, steps)
                          for sample in task_samples]
                layers = len(traces[0]["block"])
                results.append({
                    "length": length,
                    "method": method,
                    "budget": budget,
                    "block": [_mean([trace["block"][layer] for trace in traces]) for layer in range(layers)],
                    "token": [_mean([trace["token"][layer] for trace in traces]) for layer in range(layers)],
                    "steps": sum(trace["steps"] for trace in traces),
                })
    out = out_dir / model_name
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"needle_trace_{task}.json"
    json_path.write_text(json.dumps({"task": task, "samples": samples, "steps": steps, "results": results}, indent=1))
    json_path.with_suffix(".md").write_text(markdown_table(task, samples, steps, results))
    return json_path


def markdown_table(task: str, samples: int, steps: int, results: list[dict]) -> str:
    """One row per (length, method, budget); per layer "block / token" recall of the needle's tokens."""
    layers = len(results[0]["block"])

    def cell(block, token):
        if token is None:
            return "-"
        return f"{'-' if block is None else f'{block:.2f}'} / {token:.2f}"

    lines = [
        f"# Needle trace: {task}, {samples} samples, {steps} decode steps each",
        "",
        "Per layer: share of the needle's tokens in the blocks block filtering kept / among the attended tokens "
        "(mean over KV groups, steps and samples; '-' where a method has no block stage).",
        "",
        "| context | method | " + " | ".join(f"layer {layer}" for layer in range(layers)) + " |",
        "|---|---|" + "---|" * layers,
    ]
    for row in results:
        cells = " | ".join(cell(block, token) for block, token in zip(row["block"], row["token"], strict=True))
        lines.append(f"| {row['length']} | {row['method']} @ {row['budget']} | {cells} |")
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True, help="local Hugging Face checkpoint directory (causal LM)")
    parser.add_argument("--task", default="niah_single_2", choices=[name for name in ruler.TASKS if "niah" in name],
                        help="a RULER needle task (default: niah_single_2)")
    parser.add_argument("--context-lengths", type=integer_list, default=[16384],
                        help="tokens, comma-separated; k = 1024 (default: 16384)")
    parser.add_argument("--methods", default="asynctls,quest,double-sparsity",
                        help=f"comma-separated, from: {', '.join(SPARSE_METHODS)} (default: asynctls,quest,"
                        "double-sparsity)")
    parser.add_argument("--budgets", type=integer_list, default=[512], help="token budgets (default: 512)")
    parser.add_argument("--samples", type=int, default=5, help="samples per context length (default: 5)")
    parser.add_argument("--steps", type=int, default=4, help="decode steps traced per sample (default: 4)")
    parser.add_argument("--seed", type=int, default=0, help="sample seed, as in the eval (default: 0)")
    parser.add_argument("--out", type=Path, default=Path("needle_trace_results"), help="output directory")
    add_device_arguments(parser)
    add_config_arguments(parser, token_budget=False)
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    unknown = sorted(set(methods) - set(SPARSE_METHODS))
    if unknown:
        raise SystemExit(f"unknown or non-sparse methods {unknown}; choose from {', '.join(SPARSE_METHODS)}")
    model, tokenizer = load_model(args.model, args.device, args.dtype)
    json_path = run_trace(
        model, tokenizer, args.task, args.context_lengths, methods, args.budgets, args.samples, args.steps,
        config_fields(args), args.out, os.path.basename(os.path.normpath(args.model)), args.seed,
    )  # fmt: skip
    print(f"needle trace written to {json_path} and {json_path.with_suffix('.md')}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m asynctls_hf.eval.needle_trace", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
