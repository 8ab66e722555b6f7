"""`asynctls-hf demo`: one needle-in-a-haystack question answered with full attention and with AsyncTLS.

Runs offline on a CPU with the shipped Qwen3 probe model: builds a RULER niah_single_2 prompt (a number hidden in
a long text), decodes it greedily with the unpatched model and with the model patched for AsyncTLS, and prints
both answers, whether each is right (RULER's scorer), decode tokens/s, the tokens attended per step and the
memory of the AsyncTLS cache.
"""

from __future__ import annotations

import argparse

from asynctls_hf.cli_options import (
    CommandLineError,
    add_config_arguments,
    add_device_arguments,
    check_fits,
    config_from_args,
    load_checkpoint,
    max_positions,
    token_count,
)
from asynctls_hf.config import AsyncTLSConfig
from asynctls_hf.eval import ruler
from asynctls_hf.eval.generation import greedy_generate
from asynctls_hf.timing import DecodeClock

TASK = ruler.TASKS["niah_single_2"]
DEFAULT_CONTEXT = 16384
SHOWN_ANSWER_CHARACTERS = 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help="local checkpoint directory of a supported model (default: the shipped Qwen3 probe)")
    add_device_arguments(parser, default_device="cpu")
    parser.add_argument("--context", type=token_count, default=None,
                        help=f"tokens of prompt plus answer room (default: {DEFAULT_CONTEXT}, or the model's "
                             "max_position_embeddings when smaller)")
    parser.add_argument("--max-new-tokens", type=int, default=TASK.max_new_tokens,
                        help=f"most tokens generated per answer (default: {TASK.max_new_tokens}, RULER's)")
    parser.add_argument("--seed", type=int, default=0, help="picks the needle, its key and its depth (default: 0)")
    add_config_arguments(parser)


def run_demo(model, tokenizer, context: int, config: AsyncTLSConfig, seed: int = 0,
             max_new_tokens: int = TASK.max_new_tokens) -> dict:
    """Answer one niah_single_2 sample of `context` tokens with full attention, then with AsyncTLS.

    Returns {"prompt_tokens", "references", "runs"}: runs are {"method", "prediction", "score", "right",
    "tokens_per_second", "stats"} for full attention (stats None) and AsyncTLS (its cache's stats()).
    """
    sample = TASK.make_samples(tokenizer, context, 1, seed)[0]
    prompt_tokens = len(tokenizer(sample["input"])["input_ids"])
    check_fits(model, prompt_tokens, max_new_tokens, "lower --context or --max-new-tokens")
    runs = []
    for method, method_config in (("full attention", None), ("AsyncTLS", config)):
        with DecodeClock(model) as clock:
            prediction, stats = greedy_generate(model, tokenizer, sample["input"], max_new_tokens, method_config)
        score = TASK.score_sample(prediction, sample)
        runs.append({
            "method": method,
            "prediction": prediction,
            "score": score,
            "right": score == 1,
            "tokens_per_second": clock.tokens_per_second(),
            "stats": stats,
        })
    return {"prompt_tokens": prompt_tokens, "references": sample["outputs"], "runs": runs}


def format_report(result: dict, config: AsyncTLSConfig) -> str:
    """The demo's printout: the question, one line per method, the AsyncTLS cache's statistics."""
    answer = ", ".join(result["references"])
    lines = [f"needle-in-a-haystack prompt: {result['prompt_tokens']} tokens; the answer is {answer}", ""]
    for run in result["runs"]:
        speed = "n/a" if run["tokens_per_second"] is None else f"{run['tokens_per_second']:.1f}"
        verdict = "right" if run["right"] else "wrong"
        prediction = run["prediction"].strip()
        if len(prediction) > SHOWN_ANSWER_CHARACTERS:
            prediction = prediction[:SHOWN_ANSWER_CHARACTERS] + "..."
        lines.append(f"{run['method']:<15} {verdict:<6} decode {speed:>7} tokens/s  answer: {prediction!r}")
    stats = result["runs"][-1]["stats"]
    lines += [
        "",
        f"AsyncTLS attended {stats['attended_tokens']:.0f} tokens per KV head and decode step (token budget "
        f"{config.token_budget}) of a context of {result['prompt_tokens']}+; its cache holds "
        f"{stats['memory_bytes'] / 2**20:.1f} MiB",
    ]
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    model_path = args.model if args.model is not None else _shipped_probe()
    model, tokenizer = load_checkpoint(model_path, args.device, args.dtype)
    print(f"model: {model_path} ({model.config.model_type}, {model.num_parameters() / 1e6:.1f}M parameters) "
          f"on {model.device}")
    context = args.context or min(DEFAULT_CONTEXT, max_positions(model) or DEFAULT_CONTEXT)
    result = run_demo(model, tokenizer, context, config, args.seed, args.max_new_tokens)
    print(format_report(result, config))
    return 0


def _shipped_probe():
    from asynctls_hf.probes import probe_path

    try:
        return probe_path("qwen3")
    except FileNotFoundError as error:
        raise CommandLineError(f"{error}; or pass --model with a local checkpoint directory") from None
