"""The accuracy harness: every (task, method, budget, context length) on one model, results on disk.

    python -m asynctls_hf.eval --model PATH --tasks ruler --methods full,asynctls,quest \\
        --context-lengths 4096,8192 --budgets 512,1024 --samples 20 --out eval_results

Each result is keyed by (task, model, method, budget, length) and written to one JSON file,
`OUT/MODEL/TASK/METHOD_budget-B_len-L.json` (`budget-all` for full attention), with the device, dtype and torch
version it ran with; a key whose file exists is not run again. The settings of the last run that generated
something go to `OUT/MODEL/config.json`; at the end `results.md` (one table per context
length) and `accuracy_vs_budget.png` summarize every key of the run. All methods of a (task, length) see the
same samples. Decoding is greedy; scores are 0-100, from the generated text decoded with the tokenizer.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from asynctls_hf.cli_options import add_config_arguments, add_device_arguments, config_fields, integer_list
from asynctls_hf.eval import longbench, ruler
from asynctls_hf.eval.fidelity import attention_recall
from asynctls_hf.eval.generation import greedy_generate, load_model
from asynctls_hf.eval.methods import METHODS, method_config
from asynctls_hf.eval.tasks import Task, TaskUnavailable
from asynctls_hf.patches import family_for

TASKS: dict[str, Task] = {**ruler.TASKS, **longbench.TASKS}
TASK_GROUPS = {"ruler": list(ruler.TASKS), "longbench": list(longbench.TASKS)}


@dataclass(frozen=True)
class ResultKey:
    """What one result file holds: a task on a model, decoded by a method at a budget (None: full) and length."""

    task: str
    model: str
    method: str
    budget: int | None
    length: int

    def path(self, out_dir: Path) -> Path:
        budget = "all" if self.budget is None else self.budget
        return out_dir / self.model / self.task / f"{self.method}_budget-{budget}_len-{self.length}.json"


def expand_tasks(names: list[str]) -> list[str]:
    """Task names with group names ("ruler", "longbench") expanded; raises ValueError for an unknown name."""
    tasks: list[str] = []
    for name in names:
        for task in TASK_GROUPS.get(name, [name]):
            if task not in TASKS:
                raise ValueError(f"unknown task {task!r}; the tasks are: {', '.join(TASKS)} (groups: ruler, longbench)")
            if task not in tasks:
                tasks.append(task)
    return tasks


def run_keys(model_name: str, methods: list[str], tasks: list[str], context_lengths: list[int],
             budgets: list[int]) -> list[ResultKey]:
    """Every key of a run; `full` has one key per (task, length), whatever the budgets."""
    return [
        ResultKey(task, model_name, method, budget, length)
        for task in tasks
        for length in context_lengths
        for method in methods
        for budget in ([None] if METHODS[method].settings is None else budgets)
    ]


def key_width(model) -> int:
    """Width of the keys AsyncTLS caches for this model (label channels are counted against it)."""
    text_config = model.config.get_text_config(decoder=True)
    return family_for(model.config).layer_geometry(text_config)[0].key_width


def run_eval(model, tokenizer, methods: list[str], tasks: list[str], context_lengths: list[int],
             budgets: list[int], samples: int, out_dir: str | Path, *, model_name: str | None = None,
             seed: int = 0, max_new_tokens: int | None = None, base_config: dict | None = None,
             chat: bool = False, longbench_dir: str | None = None, ruler_qa_dir: str | None = None,
             fidelity_steps: int = 0, progress: bool = True) -> dict:
    """Run every missing key, then write results.md and the plot.

    Returns {"results": every key's result, "skipped": {(task, length): reason}, "run_dir": OUT/MODEL}.

    methods: names from METHODS; tasks: names from TASKS (or the groups "ruler", "longbench"); budgets: tokens
    attended per KV group and decode step; samples: per (task, length). base_config: AsyncTLSConfig fields shared
    by every method. max_new_tokens overrides each task's generation length (prompts keep the task's room).
    fidelity_steps > 0 also measures attention recall (see fidelity.py) on each key's first sample.
    """
    unknown = [method for method in methods if method not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; the methods are: {', '.join(METHODS)}")
    tasks = expand_tasks(tasks)
    base_config = dict(base_config or {})
    model_name = _safe_name(model_name or os.path.basename(str(model.config.name_or_path).rstrip("/")) or "model")
    out_dir = Path(out_dir)
    run_dir = out_dir / model_name
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "model": model_name, "methods": methods, "tasks": tasks, "context_lengths": context_lengths,
        "budgets": budgets, "samples": samples, "seed": seed, "max_new_tokens": max_new_tokens,
        "base_config": base_config, "chat": chat, "longbench_dir": longbench_dir, "ruler_qa_dir": ruler_qa_dir,
        "fidelity_steps": fidelity_steps, "dtype": str(model.dtype), "device": str(model.device),
        "attention": model.config._attn_implementation,
        "torch": torch.__version__,
    }  # fmt: skip
    keys = run_keys(model_name, methods, tasks, context_lengths, budgets)
    pending = [key for key in keys if not key.path(out_dir).exists()]
    width = key_width(model)
    # Every method's config is built (and so validated) before the first sample runs.
    configs = {
        (key.method, key.budget): method_config(key.method, key.budget, width, **base_config)
        for key in pending
        if key.budget is not None
    }
    skipped: dict[tuple[str, int], str] = {}
    settings_written = False
    with tqdm(total=len(pending) * samples, desc="eval", unit="sample", disable=not progress) as bar:
        for task_name in tasks:
            task = TASKS[task_name]
            data_dir = longbench_dir if task.benchmark == "longbench" else ruler_qa_dir
            for length in context_lengths:
                todo = [key for key in pending if key.task == task_name and key.length == length]
                if not todo:
                    continue
                try:
                    task_samples = task.samples(tokenizer, length, samples, seed, chat=chat, data_dir=data_dir)
                except (TaskUnavailable, ValueError) as error:
                    skipped[(task_name, length)] = str(error)
                    tqdm.write(f"skipping {task_name} at {length} tokens: {error}")
                    bar.update(len(todo) * samples)
                    continue
                for key in todo:
                    bar.set_postfix_str(f"{task_name} {key.method} {key.budget or 'all'} {length}")
                    config = configs.get((key.method, key.budget))
                    result = _run_key(model, tokenizer, key, task, task_samples, config, seed, max_new_tokens,
                                      fidelity_steps, bar)
                    if not settings_written:  # a run that generates nothing leaves the settings of the results
                        _write_json(run_dir / "config.json", settings)  # it summarizes as they were
                        settings_written = True
                    _write_json(key.path(out_dir), result)
                    bar.update(samples - len(task_samples))

    results = [json.loads(key.path(out_dir).read_text()) for key in keys if key.path(out_dir).exists()]
    write_table(results, skipped, run_dir / "results.md")
    plot_accuracy(results, run_dir / "accuracy_vs_budget.png")
    return {"results": results, "skipped": skipped, "run_dir": run_dir}


def _run_key(model, tokenizer, key: ResultKey, task: Task, task_samples: list[dict], config, seed: int,
             max_new_tokens: int | None, fidelity_steps: int, bar) -> dict:
    started = time.perf_counter()
    records, attended = [], []
    for sample in task_samples:
        prediction, stats = greedy_generate(
            model, tokenizer, sample["input"], max_new_tokens or task.max_new_tokens, config, task.stop_at_newline
        )
        if stats is not None:
            attended.append(stats["attended_tokens"])
        records.append({
            "index": sample["index"],
            "length": sample["length"],
            "prediction": prediction,
            "references": sample["outputs"],
            "score": task.score_sample(prediction, sample),
        })
        bar.update(1)
    result = {
        **dataclasses.asdict(key),
        "benchmark": task.benchmark,
        "score": 100 * sum(record["score"] for record in records) / len(records),
        "num_samples": len(records),
        "max_new_tokens": max_new_tokens or task.max_new_tokens,
        "seed": seed,
        "config": None if config is None else dataclasses.asdict(config),
        "attended_tokens": sum(attended) / len(attended) if attended else None,
        "device": str(model.device),
        "dtype": str(model.dtype),
        "attention": model.config._attn_implementation,
        "torch": torch.__version__,
    }
    if fidelity_steps and config is not None:
        input_ids = tokenizer(task_samples[0]["input"], return_tensors="pt")["input_ids"].to(model.device)
        result["attention_recall"] = attention_recall(model, input_ids, config, fidelity_steps)
    result["elapsed_s"] = time.perf_counter() - started
    result["samples"] = records
    return result


def scored_samples(tokenizer, result: dict, chat: bool = False, data_dir: str | None = None) -> list[tuple[dict, dict]]:
    """The prompts a written result (one key's JSON) was scored on, made again from its task, length, sample count
    and seed with `tokenizer` (the run's) and the run's `chat` and `data_dir`: [(sample, record)] in the result's
    order, each sample beside the record of its answer."""
    task = TASKS[result["task"]]
    samples = task.samples(tokenizer, result["length"], result["num_samples"], result["seed"], chat=chat,
                           data_dir=data_dir)
    return list(zip(samples, result["samples"], strict=True))


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def _write_json(path: Path, data: dict) -> None:
    """Write atomically, so an interrupted run never leaves a result file that would be skipped later."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    partial.replace(path)


# ---- summaries ---------------------------------------------------------------------------------------------


def _row_label(method: str, budget: int | None) -> str:
    return method if budget is None else f"{method} @ {budget}"


def _grid(results: list[dict], value: str) -> dict[int, dict[tuple[str, int | None], dict[str, float]]]:
    """{length: {(method, budget): {task: results[value]}}} in the order the results come."""
    grid: dict = {}
    for result in results:
        if result.get(value) is not None:
            number = result[value]["mean"] if value == "attention_recall" else result[value]
            if number is not None:
                row = grid.setdefault(result["length"], {}).setdefault((result["method"], result["budget"]), {})
                row[result["task"]] = number
    return grid


def _mean_over(row: dict[str, float], tasks: list[str]) -> float | None:
    """The mean of a row over `tasks`, or None where the row lacks one of them (a run cut short): a mean over
    other tasks than its neighbours' would not compare with theirs."""
    return None if any(task not in row for task in tasks) else sum(row[task] for task in tasks) / len(tasks)


def write_table(results: list[dict], skipped: dict[tuple[str, int], str], path: Path) -> None:
    """results.md: per context length, a table of scores (rows: method @ budget; columns: tasks and their mean,
    "-" where a row lacks a task); then attention recall when measured, and the skipped tasks with the reason."""
    lines = ["# Accuracy", ""]
    tasks = list(dict.fromkeys(result["task"] for result in results))
    for title, value, digits in (("Scores (0-100)", "score", 1), ("Attention recall", "attention_recall", 3)):
        for length, rows in sorted(_grid(results, value).items()):
            lines += [f"## {title}, context {length} tokens", "", "| method | " + " | ".join(tasks) + " | mean |"]
            lines.append("|---" * (len(tasks) + 2) + "|")
            for (method, budget), row in rows.items():
                cells = [f"{row[task]:.{digits}f}" if task in row else "-" for task in tasks]
                mean = _mean_over(row, tasks)
                mean_cell = "-" if mean is None else f"{mean:.{digits}f}"
                lines.append(f"| {_row_label(method, budget)} | " + " | ".join(cells) + f" | {mean_cell} |")
            lines.append("")
    if skipped:
        lines += ["## Skipped", ""]
        lines += [f"- {task} at {length} tokens: {reason}" for (task, length), reason in skipped.items()]
        lines.append("")
    path.write_text("\n".join(lines))


def plot_accuracy(results: list[dict], path: Path) -> None:
    """accuracy_vs_budget.png: mean score over tasks against the budget, one line per method, one panel per
    context length, rows lacking a task left out; full attention is a dashed horizontal line. Without matplotlib,
    says so and draws nothing (a later run with it draws the plot from the results on disk)."""
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib not installed: skipped {path.name}; rerun with the eval extra to draw it", file=sys.stderr)
        return

    matplotlib.use("Agg")
    from matplotlib import pyplot

    grid = _grid(results, "score")
    tasks = list(dict.fromkeys(result["task"] for result in results))
    lengths = sorted(grid)
    figure, axes = pyplot.subplots(1, max(len(lengths), 1), figsize=(5 * max(len(lengths), 1), 4), squeeze=False)
    for axis, length in zip(axes[0], lengths, strict=False):
        lines: dict[str, list[tuple[int, float]]] = {}
        for (method, budget), row in grid[length].items():
            mean = _mean_over(row, tasks)
            if mean is None:
                continue
            if budget is None:
                axis.axhline(mean, color="black", linestyle="--", label=method)
            else:
                lines.setdefault(method, []).append((budget, mean))
        for method, points in lines.items():
            points.sort()
            axis.plot([budget for budget, _ in points], [mean for _, mean in points], marker="o", label=method)
        if lines:
            budgets = sorted({budget for points in lines.values() for budget, _ in points})
            axis.set_xscale("log", base=2)
            axis.set_xticks(budgets, labels=[str(budget) for budget in budgets])
        axis.set(title=f"context {length} tokens", xlabel="token budget", ylabel="mean score", ylim=(0, 100))
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    pyplot.close(figure)


# ---- command line ------------------------------------------------------------------------------------------


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def _method_names(text: str) -> list[str]:
    unknown = [name for name in _names(text) if name not in METHODS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    return _names(text)


def _task_names(text: str) -> list[str]:
    try:
        return expand_tasks(_names(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The harness's options (shared by `python -m asynctls_hf.eval` and `asynctls-hf eval`)."""
    parser.add_argument("--model", required=True, help="local Hugging Face checkpoint directory (causal LM)")
    parser.add_argument("--methods", type=_method_names, default=list(METHODS),
                        help=f"comma-separated, from: {', '.join(METHODS)} (default: all)")
    parser.add_argument("--tasks", type=_task_names, default=["ruler"],
                        help="comma-separated task names, or the groups ruler, longbench (default: ruler)")
    parser.add_argument("--context-lengths", type=integer_list, default=[4096],
                        help="tokens, comma-separated; k = 1024 (default: 4096)")
    parser.add_argument("--budgets", type=integer_list, default=[512, 1024, 2048],
                        help="tokens attended per KV group and decode step, comma-separated")
    parser.add_argument("--samples", type=int, default=20, help="samples per task and context length")
    parser.add_argument("--out", default="eval_results", help="output directory")
    add_device_arguments(parser)
    parser.add_argument("--max-new-tokens", type=int, default=None, help="override every task's generation length")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated samples (default: 0)")
    parser.add_argument("--chat", action="store_true", help="wrap prompts in the tokenizer's chat template")
    parser.add_argument("--longbench-dir", default=None, help="folder of the official LongBench JSONL files")
    parser.add_argument("--ruler-qa-dir", default=None, help="folder holding RULER's squad.json and hotpotqa.json")
    parser.add_argument("--fidelity-steps", type=int, default=0,
                        help="also measure attention recall over this many decode steps per key (0: off)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_config_arguments(parser, token_budget=False, title="AsyncTLS settings shared by every method")
    return parser


def run_from_args(args: argparse.Namespace) -> int:
    """Load the model named by parsed arguments and run the harness."""
    model, tokenizer = load_model(args.model, args.device, args.dtype)
    base_config = config_fields(args)
    outcome = run_eval(
        model, tokenizer, args.methods, args.tasks, args.context_lengths, args.budgets, args.samples, args.out,
        model_name=os.path.basename(os.path.normpath(args.model)), seed=args.seed,
        max_new_tokens=args.max_new_tokens, base_config=base_config, chat=args.chat,
        longbench_dir=args.longbench_dir, ruler_qa_dir=args.ruler_qa_dir, fidelity_steps=args.fidelity_steps,
        progress=not args.no_progress,
    )
    print(f"{len(outcome['results'])} results; summary in {outcome['run_dir'] / 'results.md'}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m asynctls_hf.eval", description=__doc__,
                                                   formatter_class=argparse.RawDescriptionHelpFormatter))
    return run_from_args(parser.parse_args(argv))
